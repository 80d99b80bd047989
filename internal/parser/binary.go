package parser

import (
	"bytes"
	"crypto/rand"
	"encoding"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"sync"

	// encoding/json's API, with its error types (aliases), at several
	// times its speed in typed decoding: BenchmarkReplyDecode/struct
	// takes about 200 ns and 2 allocations against 1,100 ns and 6.
	"github.com/segmentio/encoding/json"
)

// Binary values travel as attachments: the JSON payload holds a placeholder
// {"_placeholder":true,"num":N} where the value was, and the bytes follow as
// separate binary messages.
//
// encoding/json has no hook to encode []byte differently inside arbitrary
// values, so both directions go through markers: a binary value is swapped
// for a 12-byte marker (a per-process random prefix and an index). JSON
// encodes the marker as a 16-character base64 string that cannot collide
// with user data in practice; the encoded text is then searched for those
// strings, which become placeholders. Decoding does the reverse: placeholders
// become marker strings, encoding/json decodes them into []byte fields (as
// the marker bytes) or interface values (as the marker string), and a final
// walk puts the attachments in their place.

const (
	markerLen    = 12 // bytes; base64 of it is 16 characters, no padding
	markerPrefix = 9  // random bytes shared by all markers of this process
	markerB64Len = 16
	prefixB64Len = 12
)

var (
	markerSeed      [markerPrefix]byte
	markerSeedB64   string
	placeholderHead = []byte(`{"_placeholder":true,"num":`)
)

func init() {
	if _, err := rand.Read(markerSeed[:]); err != nil {
		panic("parser: reading random marker seed: " + err.Error())
	}
	markerSeedB64 = base64.StdEncoding.EncodeToString(markerSeed[:])
}

func marker(i int) []byte {
	m := make([]byte, markerLen)
	copy(m, markerSeed[:])
	m[9], m[10], m[11] = byte(i>>16), byte(i>>8), byte(i)
	return m
}

func markerString(i int) string {
	return base64.StdEncoding.EncodeToString(marker(i))
}

// markerIndex returns the index encoded in marker bytes b.
func markerIndex(b []byte) (int, bool) {
	if len(b) != markerLen || !bytes.Equal(b[:markerPrefix], markerSeed[:]) {
		return 0, false
	}
	return int(b[9])<<16 | int(b[10])<<8 | int(b[11]), true
}

// markerStringIndex returns the index encoded in a base64 marker string.
func markerStringIndex(s string) (int, bool) {
	if len(s) != markerB64Len || s[:prefixB64Len] != markerSeedB64 {
		return 0, false
	}
	var b [markerLen]byte
	if _, err := base64.StdEncoding.Decode(b[:], []byte(s)); err != nil {
		return 0, false
	}
	return markerIndex(b[:])
}

var (
	marshalerType     = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// isBinary reports whether values of type t are binary data: a byte slice
// that does not choose its own JSON form (json.RawMessage does).
func isBinary(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8 && !encodesItself(t)
}

func encodesItself(t reflect.Type) bool {
	return t.Implements(marshalerType) || t.Implements(textMarshalerType) ||
		reflect.PointerTo(t).Implements(marshalerType) || reflect.PointerTo(t).Implements(textMarshalerType)
}

var holdsBinaryCache sync.Map // reflect.Type -> bool

// mayHoldBinary reports whether a value of type t can contain binary data,
// directly or behind an interface.
func mayHoldBinary(t reflect.Type) bool {
	if v, ok := holdsBinaryCache.Load(t); ok {
		return v.(bool)
	}
	r := typeHoldsBinary(t, map[reflect.Type]bool{})
	holdsBinaryCache.Store(t, r)
	return r
}

func typeHoldsBinary(t reflect.Type, seen map[reflect.Type]bool) bool {
	if isBinary(t) || t.Kind() == reflect.Interface {
		return true
	}
	if seen[t] || encodesItself(t) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return typeHoldsBinary(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && typeHoldsBinary(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// MarshalEvent encodes an EVENT payload, [name, args...], replacing binary
// values anywhere in args by placeholders. It returns the JSON text and the
// attachments in placeholder order.
func MarshalEvent(name string, args []any) (json.RawMessage, [][]byte, error) {
	return marshalArray(name, true, args)
}

// MarshalAck encodes an ACK payload, [args...], like MarshalEvent. It never
// returns null: no arguments encode as [].
func MarshalAck(args []any) (json.RawMessage, [][]byte, error) {
	return marshalArray("", false, args)
}

func marshalArray(name string, withName bool, args []any) (json.RawMessage, [][]byte, error) {
	var sub substitution
	vals, copied := args, false
	for i, a := range args {
		rs, raw := a.(RawSender)
		if a == nil || !raw && !mayHoldBinary(reflect.TypeOf(a)) {
			continue
		}
		if !copied {
			vals, copied = append([]any(nil), args...), true
		}
		if !raw {
			vals[i] = sub.walk(reflect.ValueOf(a)).Interface()
			continue
		}
		text, own := rs.SendRaw()
		if len(own) > 0 {
			var err error
			if text, err = sub.unlocalize(text, own); err != nil {
				return nil, nil, fmt.Errorf("encoding argument %d: %w", i+1, err)
			}
		}
		if len(text) == 0 {
			text = json.RawMessage("null")
		}
		vals[i] = text
	}

	buf := bufPool.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufPool.Put(buf) }()
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('[')
	if withName {
		if err := encodeTrimmed(enc, buf, name); err != nil {
			return nil, nil, err
		}
	}
	for i, v := range vals {
		if withName || i > 0 {
			buf.WriteByte(',')
		}
		if err := encodeTrimmed(enc, buf, v); err != nil {
			return nil, nil, fmt.Errorf("encoding argument %d: %w", i+1, err)
		}
	}
	buf.WriteByte(']')

	if len(sub.attachments) == 0 {
		return bytes.Clone(buf.Bytes()), nil, nil
	}
	return placeMarkers(buf.Bytes(), sub.attachments)
}

func encodeTrimmed(enc *json.Encoder, buf *bytes.Buffer, v any) error {
	if err := enc.Encode(v); err != nil {
		return err
	}
	buf.Truncate(buf.Len() - 1) // Encode's newline
	return nil
}

// placeMarkers replaces each quoted marker string in text by a placeholder,
// numbering them in order of appearance, and orders the attachments alike.
func placeMarkers(text []byte, found [][]byte) (json.RawMessage, [][]byte, error) {
	out := make([]byte, 0, len(text)+16*len(found))
	var atts [][]byte
	quotedSeed := `"` + markerSeedB64
	for {
		i := bytes.Index(text, []byte(quotedSeed))
		if i < 0 || len(text) < i+markerB64Len+2 {
			break
		}
		idx, ok := markerStringIndex(string(text[i+1 : i+1+markerB64Len]))
		if !ok || idx >= len(found) || text[i+1+markerB64Len] != '"' {
			out = append(out, text[:i+1]...)
			text = text[i+1:]
			continue
		}
		out = append(out, text[:i]...)
		out = append(out, placeholderHead...)
		out = fmt.Appendf(out, "%d}", len(atts))
		atts = append(atts, found[idx])
		text = text[i+markerB64Len+2:]
	}
	out = append(out, text...)
	if len(atts) > MaxAttachments {
		return nil, nil, fmt.Errorf("%w: %d binary values in one packet, at most %d", ErrTooManyAttach, len(atts), MaxAttachments)
	}
	return out, atts, nil
}

// substitution copies values that hold binary data, swapping each binary
// value for a marker and collecting the bytes.
type substitution struct {
	attachments [][]byte
}

func (s *substitution) walk(v reflect.Value) reflect.Value {
	t := v.Type()
	if !mayHoldBinary(t) {
		return v
	}
	switch v.Kind() {
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t).Elem()
		out.Set(s.walk(v.Elem()))
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t.Elem())
		out.Elem().Set(s.walk(v.Elem()))
		return out
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		if isBinary(t) {
			s.attachments = append(s.attachments, v.Bytes())
			return reflect.ValueOf(marker(len(s.attachments) - 1)).Convert(t)
		}
		out := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(s.walk(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(t).Elem()
		for i := range v.Len() {
			out.Index(i).Set(s.walk(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		out := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), s.walk(it.Value()))
		}
		return out
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v)
		for i := range t.NumField() {
			f := t.Field(i)
			if f.IsExported() && mayHoldBinary(f.Type) {
				out.Field(i).Set(s.walk(v.Field(i)))
			}
		}
		return out
	}
	return v
}

// checkPlaceholders verifies that every placeholder in data refers to one of
// n attachments.
func checkPlaceholders(data json.RawMessage, n int) error {
	// Numbers stay json.Number: one beyond float64 range is valid JSON.
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPayload, err)
	}
	var bad bool
	visitPlaceholders(tree, func(num float64, ok bool) any {
		if _, ok := attachmentIndex(num, ok, n); !ok {
			bad = true
		}
		return nil
	})
	if bad {
		return ErrIllegalAttach
	}
	return nil
}

// attachmentIndex returns the index of the attachment that a placeholder
// refers to, and false unless num (numeric when isNum) is one of 0..n-1.
func attachmentIndex(num float64, isNum bool, n int) (int, bool) {
	if !isNum || num < 0 || num >= float64(n) || num != float64(int(num)) {
		return 0, false
	}
	return int(num), true
}

// visitPlaceholders walks a decoded JSON tree and replaces each placeholder
// object by what fn returns; fn gets the placeholder's num and whether num
// is a number.
func visitPlaceholders(tree any, fn func(num float64, ok bool) any) any {
	switch t := tree.(type) {
	case []any:
		for i, e := range t {
			t[i] = visitPlaceholders(e, fn)
		}
	case map[string]any:
		if p, _ := t["_placeholder"].(bool); p {
			switch n := t["num"].(type) {
			case float64:
				return fn(n, true)
			case json.Number:
				f, err := n.Float64()
				return fn(f, err == nil)
			}
			return fn(0, false)
		}
		for k, e := range t {
			t[k] = visitPlaceholders(e, fn)
		}
	}
	return tree
}

// Unmarshal decodes one JSON argument into dst, a non-nil pointer, putting
// attachments where placeholders are: into []byte values, and as []byte into
// interface values. Without attachments, or when dst cannot hold binary
// data, it is json.Unmarshal.
func Unmarshal(raw json.RawMessage, attachments [][]byte, dst any) error {
	if r, ok := dst.(RawReceiver); ok {
		text, own, err := localize(raw, attachments)
		if err != nil {
			return err
		}
		r.ReceiveRaw(text, own)
		return nil
	}
	if t := reflect.TypeOf(dst); len(attachments) == 0 || t == nil || !mayHoldBinary(t) {
		return json.Unmarshal(raw, dst)
	}
	switch d := dst.(type) {
	case *any:
		var tree any
		if err := json.Unmarshal(raw, &tree); err != nil {
			return err
		}
		*d = resolvePlaceholders(tree, attachments)
		return nil
	case *[]byte:
		var tree any
		if err := json.Unmarshal(raw, &tree); err != nil {
			return err
		}
		if b, ok := resolvePlaceholders(tree, attachments).([]byte); ok {
			*d = b
			return nil
		}
	}

	if !validJSON(raw) {
		return json.Unmarshal(raw, dst) // its syntax error; Decode below stops after one value
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	tree = visitPlaceholders(tree, func(num float64, isNum bool) any {
		if i, ok := attachmentIndex(num, isNum, len(attachments)); ok {
			return markerString(i)
		}
		return nil // no such attachment
	})
	text, err := json.Marshal(tree)
	if err != nil {
		return err
	}
	// After a type error encoding/json has still filled what it could:
	// resolve the markers there too.
	err = json.Unmarshal(text, dst)
	r := resolver{attachments: attachments}
	r.fix(reflect.ValueOf(dst))
	if scrubMarkers(reflect.ValueOf(dst)) && err == nil {
		// A placeholder landed where no binary fits (a string field, a
		// json.RawMessage): refuse it as encoding/json refuses a type
		// mismatch, rather than hand over the marker.
		err = errBinaryMismatch
	}
	return err
}

var errBinaryMismatch = errors.New("binary data where a string or raw JSON was expected")

// scrubMarkers clears every marker left in v, in a string or inside raw
// JSON, and reports whether it found one.
func scrubMarkers(v reflect.Value) bool {
	found := false
	switch v.Kind() {
	case reflect.Pointer:
		return !v.IsNil() && scrubMarkers(v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return false
		}
		c := reflect.New(v.Elem().Type()).Elem()
		c.Set(v.Elem())
		if found = scrubMarkers(c); found && v.CanSet() {
			v.Set(c)
		}
	case reflect.String:
		if _, ok := markerStringIndex(v.String()); ok {
			found = true
			if v.CanSet() {
				v.SetString("")
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if !isBinary(v.Type()) && bytes.Contains(v.Bytes(), []byte(markerSeedB64)) {
				found = true
				if v.CanSet() {
					v.SetZero()
				}
			}
			return found
		}
		fallthrough
	case reflect.Array:
		for i := range v.Len() {
			found = scrubMarkers(v.Index(i)) || found
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			c := reflect.New(it.Value().Type()).Elem()
			c.Set(it.Value())
			if scrubMarkers(c) {
				found = true
				v.SetMapIndex(it.Key(), c)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				found = scrubMarkers(v.Field(i)) || found
			}
		}
	}
	return found
}

// resolvePlaceholders replaces the placeholders of a decoded JSON tree by
// their attachments.
func resolvePlaceholders(tree any, attachments [][]byte) any {
	return visitPlaceholders(tree, func(num float64, isNum bool) any {
		if i, ok := attachmentIndex(num, isNum, len(attachments)); ok {
			return attachments[i]
		}
		return nil
	})
}

// resolver walks a decoded value and swaps markers for attachments.
type resolver struct {
	attachments [][]byte
}

func (r *resolver) attachment(i int) ([]byte, bool) {
	if i < 0 || i >= len(r.attachments) {
		return nil, false
	}
	return r.attachments[i], true
}

func (r *resolver) fix(v reflect.Value) {
	if !mayHoldBinary(v.Type()) {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			r.fix(v.Elem())
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		switch e.Kind() {
		case reflect.String:
			if i, ok := markerStringIndex(e.String()); ok {
				if b, ok := r.attachment(i); ok {
					v.Set(reflect.ValueOf(b))
				}
			}
		case reflect.Slice, reflect.Map, reflect.Pointer:
			c := reflect.New(e.Type()).Elem()
			c.Set(e)
			r.fix(c)
			v.Set(c)
		}
	case reflect.Slice:
		if isBinary(v.Type()) {
			if i, ok := markerIndex(v.Bytes()); ok {
				if b, ok := r.attachment(i); ok {
					v.Set(reflect.ValueOf(b).Convert(v.Type()))
				}
			}
			return
		}
		for i := range v.Len() {
			r.fix(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			r.fix(v.Index(i))
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			c := reflect.New(it.Value().Type()).Elem()
			c.Set(it.Value())
			r.fix(c)
			v.SetMapIndex(it.Key(), c)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if t.Field(i).IsExported() && v.Field(i).CanSet() {
				r.fix(v.Field(i))
			}
		}
	}
}

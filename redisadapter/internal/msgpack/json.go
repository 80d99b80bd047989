package msgpack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// Socket.IO carries binary values next to a JSON text, each replaced in the
// text by a placeholder {"_placeholder":true,"num":N} where N indexes the
// attachments. MessagePack carries them in place, as bin. FromJSON and
// ToJSON convert between the two.

// ErrIllegalAttachments is returned for a placeholder whose num does not
// index an attachment.
var ErrIllegalAttachments = errors.New("msgpack: illegal attachments")

// FromJSON decodes a JSON text whose placeholders refer to attachments into
// a value for Marshal: objects become Maps (in text order), placeholders
// the []byte they refer to (placeholders are left as objects when
// attachments is nil), and numbers int64, uint64 or float64 (a number
// written with a fraction or exponent that holds an integer is encoded as
// an integer by Append, as JavaScript has one number type).
func FromJSON(text []byte, attachments [][]byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	c := converter{dec: dec, attachments: attachments}
	v, err := c.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("msgpack: data after the JSON value")
	}
	return v, nil
}

type converter struct {
	dec         *json.Decoder
	attachments [][]byte
}

func (c *converter) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("msgpack: JSON nested deeper than %d", maxDepth)
	}
	tok, err := c.dec.Token()
	if err != nil {
		return nil, fmt.Errorf("msgpack: reading JSON: %w", err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			a := []any{}
			for c.dec.More() {
				v, err := c.value(depth + 1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := c.dec.Token() // ]
			return a, err
		case '{':
			m := Map{}
			for c.dec.More() {
				kt, err := c.dec.Token()
				if err != nil {
					return nil, err
				}
				key, _ := kt.(string)
				v, err := c.value(depth + 1)
				if err != nil {
					return nil, err
				}
				m = append(m, Entry{key, v})
			}
			if _, err := c.dec.Token(); err != nil { // }
				return nil, err
			}
			return c.placeholder(m)
		}
		return nil, fmt.Errorf("msgpack: unexpected JSON delimiter %v", t)
	case json.Number:
		return Number(t)
	}
	return tok, nil // string, bool, nil
}

// placeholder returns the attachment m stands for, or m when it is not a
// placeholder.
func (c *converter) placeholder(m Map) (any, error) {
	if c.attachments == nil {
		return m, nil
	}
	if p, _ := m.Get("_placeholder"); p != true {
		return m, nil
	}
	num, _ := m.Get("num")
	var i int64 = -1
	switch n := num.(type) {
	case int64:
		i = n
	case float64:
		if n == math.Trunc(n) && n >= 0 && n < math.MaxInt32 {
			i = int64(n)
		}
	}
	if i < 0 || i >= int64(len(c.attachments)) {
		return nil, ErrIllegalAttachments
	}
	return c.attachments[i], nil
}

// Number converts a JSON number to int64, uint64 or float64.
func Number(n json.Number) (any, error) {
	s := string(n)
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return i, nil
	}
	if u, err := strconv.ParseUint(s, 10, 64); err == nil {
		return u, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("msgpack: JSON number %q: %w", s, err)
	}
	return f, nil
}

// ToJSON encodes a decoded value as JSON text, replacing each []byte by a
// placeholder and returning the bytes as attachments, in placeholder
// order (depth first). Undefined becomes null in arrays and is left out of
// maps; NaN and infinities become null, and times their ISO 8601 form, as
// JSON.stringify writes them.
func ToJSON(v any) (json.RawMessage, [][]byte, error) {
	var w jsonWriter
	if err := w.value(v); err != nil {
		return nil, nil, err
	}
	return w.buf, w.attachments, nil
}

type jsonWriter struct {
	buf         []byte
	attachments [][]byte
}

func (w *jsonWriter) value(v any) error {
	switch v := v.(type) {
	case nil, Undefined:
		w.buf = append(w.buf, "null"...)
	case bool:
		w.buf = strconv.AppendBool(w.buf, v)
	case int:
		w.buf = strconv.AppendInt(w.buf, int64(v), 10)
	case int64:
		w.buf = strconv.AppendInt(w.buf, v, 10)
	case uint64:
		w.buf = strconv.AppendUint(w.buf, v, 10)
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			w.buf = append(w.buf, "null"...)
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.buf = append(w.buf, b...)
	case string:
		w.buf = appendJSONString(w.buf, v)
	case []byte:
		w.buf = append(w.buf, `{"_placeholder":true,"num":`...)
		w.buf = strconv.AppendInt(w.buf, int64(len(w.attachments)), 10)
		w.buf = append(w.buf, '}')
		w.attachments = append(w.attachments, v)
	case json.RawMessage:
		w.buf = append(w.buf, v...)
	case []string:
		w.buf = append(w.buf, '[')
		for i, e := range v {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			w.buf = appendJSONString(w.buf, e)
		}
		w.buf = append(w.buf, ']')
	case time.Time:
		w.buf = appendJSONString(w.buf, v.UTC().Format("2006-01-02T15:04:05.000Z"))
	case []any:
		w.buf = append(w.buf, '[')
		for i, e := range v {
			if i > 0 {
				w.buf = append(w.buf, ',')
			}
			if err := w.value(e); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, ']')
	case Map:
		w.buf = append(w.buf, '{')
		first := true
		for _, e := range v {
			if _, undef := e.Value.(Undefined); undef {
				continue
			}
			if !first {
				w.buf = append(w.buf, ',')
			}
			first = false
			w.buf = appendJSONString(w.buf, e.Key)
			w.buf = append(w.buf, ':')
			if err := w.value(e.Value); err != nil {
				return err
			}
		}
		w.buf = append(w.buf, '}')
	default:
		return fmt.Errorf("msgpack: cannot write a value of type %T as JSON", v)
	}
	return nil
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// (and U+2028, U+2029); invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

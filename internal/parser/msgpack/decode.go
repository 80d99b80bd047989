// Package msgpack is socket.io-msgpack-parser 3.x's wire format: each
// packet is one MessagePack map ({type, nsp, data, id}) in one binary
// message, with binary values inline and no attachment messages. Values
// follow notepack.io 2.2, the MessagePack codec of that parser.
//
// Packets are converted to and from the model of package parser, JSON data
// with placeholders and attachments, so that everything above the wire
// (typed handlers, acks, adapters, recovery) is the same for every format:
//
//	MessagePack (notepack.io 2.2)        JSON data / attachments
//	nil, bool, str                       null, true/false, string
//	int and uint formats                 integer
//	float32, float64                     number (NaN and ±Inf: null)
//	bin, ext type 0 (ArrayBuffer)        an attachment and its placeholder
//	fixext1 type 0 (undefined)           null in arrays, left out of maps
//	fixext8 type 0 (Date)                the ISO 8601 string of toJSON
//	any other extension                  [type, attachment], as notepack
//	array, map                           array, object (keys as strings)
//
// Encoding writes what notepack writes for the same JavaScript value:
// integers in the smallest int or uint format, other numbers as float64,
// attachments as bin.
package msgpack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally/internal/engineio"
	"github.com/rallyhq/rally/internal/parser"
)

// Limits of decoding, beyond what applications send: a packet past them is
// refused like a malformed one.
const (
	// MaxDepth bounds the nesting of arrays and maps in a packet.
	MaxDepth = 1000
	// MaxBinaries bounds the binary values of one packet.
	MaxBinaries = 1000
)

// Codec is the format, for Options.Parser.
var Codec parser.Codec = codec{}

// ErrMalformed is wrapped by the errors of input that is not one
// well-formed MessagePack value.
var ErrMalformed = errors.New("malformed MessagePack")

var (
	errTextMessage = errors.New("text message on a msgpack connection")
	errTooDeep     = fmt.Errorf("%w: nested deeper than %d", ErrMalformed, MaxDepth)
	errTooManyBins = fmt.Errorf("%w: more than %d binary values", parser.ErrTooManyAttach, MaxBinaries)
	errKey         = fmt.Errorf("%w: a map key that is not a string, number, boolean or nil", parser.ErrInvalidPayload)
)

// Lead bytes of the extension formats, whose type 0 notepack.io gives
// meanings that depend on the format, not on the type alone.
const (
	fixext1 = 0xd4
	fixext8 = 0xd7
	ext8    = 0xc7
	ext16   = 0xc8
	ext32   = 0xc9
)

type codec struct{}

func (codec) Decode(_ *parser.Decoder, data []byte, binary bool) (*parser.Packet, error) {
	if !binary {
		return nil, errTextMessage
	}
	return Decode(data)
}

func (codec) Encode(p *parser.Packet) ([]engineio.Frame, error) {
	b, err := Encode(nil, p)
	if err != nil {
		return nil, err
	}
	return []engineio.Frame{{Data: b, Binary: true}}, nil
}

// Decode decodes one packet. Like socket.io-msgpack-parser, it checks in
// order the type (an integer from 0 to 4), the namespace (a string), the
// data (by type) and the id (absent or an integer); it then applies the
// rules of parser.Validate. Keys other than these four are ignored (the
// official client sends "options"). Attachments share memory with data.
func Decode(data []byte) (*parser.Packet, error) {
	if msgp.NextType(data) != msgp.MapType {
		if _, err := msgp.Skip(data); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: not a map", parser.ErrUnknownType)
	}
	n, b, err := msgp.ReadMapHeaderBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var (
		d, skip             decoder // data, and the values ignored
		typ, id, nsp        field
		hasPayload, dataBin bool
		payloadKind         byte
	)
	for range n {
		var key []byte
		if key, b, err = skip.key(b); err != nil {
			return nil, err
		}
		switch string(key) {
		case "type":
			b, err = skip.field(b, &typ)
		case "nsp":
			b, err = skip.field(b, &nsp)
		case "id":
			b, err = skip.field(b, &id)
		case "data": // the last one counts, as in JavaScript
			d = decoder{out: make([]byte, 0, min(2*len(b), 1024))}
			hasPayload = !isUndefined(b)
			payloadKind, dataBin = kindOf(b)
			b, err = d.value(b, 1)
		default:
			skip.out, skip.atts = skip.out[:0], skip.atts[:0]
			b, err = skip.value(b, 1)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(b) > 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}

	t, ok := typ.integer()
	if !ok || t < int64(parser.Connect) || t > int64(parser.ConnectError) {
		return nil, fmt.Errorf("%w: %v", parser.ErrUnknownType, typ)
	}
	if nsp.kind != msgp.StrType {
		return nil, parser.ErrInvalidNamespace
	}
	p := &parser.Packet{Type: parser.Type(t), Namespace: nsp.str, ID: parser.NoID}
	valid := false
	switch p.Type {
	case parser.Connect:
		valid = !hasPayload || payloadKind == '{' && !dataBin
	case parser.Disconnect:
		valid = !hasPayload
	case parser.ConnectError:
		valid = hasPayload && (payloadKind == '"' || payloadKind == '{' && !dataBin)
	default:
		valid = hasPayload && payloadKind == '['
	}
	if !valid {
		return nil, fmt.Errorf("%w for %s", parser.ErrInvalidPayload, p.Type)
	}
	if id.kind != 0 {
		i, ok := id.integer()
		if !ok || i < 0 || i > parser.MaxID {
			return nil, parser.ErrInvalidID
		}
		p.ID = i
	}
	if hasPayload {
		p.Data = d.out
	}
	if len(d.atts) > 0 {
		switch p.Type {
		case parser.Event:
			p.Type = parser.BinaryEvent
		case parser.Ack:
			p.Type = parser.BinaryAck
		default:
			// CONNECT and CONNECT_ERROR data is JSON to rally: binary
			// values have no place there.
			return nil, fmt.Errorf("%w: binary data in %s", parser.ErrInvalidPayload, p.Type)
		}
		p.Attachments = d.atts
	}
	if err := parser.Validate(p); err != nil {
		return nil, err
	}
	return p, nil
}

// field is a top-level value of a packet other than its data: a number or
// a string. kind is 0 when it is absent or undefined.
type field struct {
	kind msgp.Type
	num  float64
	i    int64
	int  bool
	str  string
}

func (f field) integer() (int64, bool) {
	switch {
	case f.kind == 0 || f.kind == msgp.StrType:
		return 0, false
	case f.int:
		return f.i, true
	case f.num == math.Trunc(f.num) && math.Abs(f.num) < 1<<63:
		return int64(f.num), true
	}
	return 0, false
}

func (f field) String() string {
	switch {
	case f.kind == 0:
		return "undefined"
	case f.kind == msgp.StrType:
		return strconv.Quote(f.str)
	case f.int:
		return strconv.FormatInt(f.i, 10)
	}
	return strconv.FormatFloat(f.num, 'g', -1, 64)
}

// field reads a top-level value into f: numbers and strings are kept,
// other values only noted (by a kind that is neither).
func (d *decoder) field(b []byte, f *field) ([]byte, error) {
	*f = field{kind: msgp.NextType(b)}
	var err error
	switch f.kind {
	case msgp.IntType:
		f.i, b, err = msgp.ReadInt64Bytes(b)
		f.int, f.num = true, float64(f.i)
	case msgp.UintType:
		var u uint64
		u, b, err = msgp.ReadUint64Bytes(b)
		f.num = float64(u)
		if u <= math.MaxInt64 {
			f.i, f.int = int64(u), true
		}
	case msgp.Float32Type, msgp.Float64Type:
		f.num, b, err = msgp.ReadFloat64Bytes(b)
	case msgp.StrType:
		var s []byte
		s, b, err = msgp.ReadStringZC(b)
		f.str = string(s)
	default:
		if isUndefined(b) {
			f.kind = 0
		}
		d.out, d.atts = d.out[:0], d.atts[:0]
		return d.value(b, 1)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

// isUndefined reports whether b starts with notepack's undefined.
func isUndefined(b []byte) bool {
	return len(b) >= 3 && b[0] == fixext1 && b[1] == 0
}

// kindOf returns the first byte of the JSON form of the value b starts
// with ('{', '[', '"' or 0 for the others), and whether it is binary
// (which takes the JSON form of a placeholder object).
func kindOf(b []byte) (byte, bool) {
	switch msgp.NextType(b) {
	case msgp.MapType:
		return '{', false
	case msgp.ArrayType:
		return '[', false
	case msgp.StrType:
		return '"', false
	case msgp.BinType:
		return '{', true
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		switch b[0] {
		case ext8, ext16, ext32:
			if extType(b) == 0 {
				return '{', true // an ArrayBuffer
			}
			return '[', false
		case fixext8:
			if extType(b) == 0 {
				return '"', false // a Date
			}
		}
		return '[', false
	}
	return 0, false
}

// extType returns the type of the extension b starts with, as the library
// reads it.
func extType(b []byte) int8 {
	raw := msgp.RawExtension{}
	if _, err := msgp.ReadExtensionBytes(b, &raw); err != nil {
		var te msgp.ExtensionTypeError
		if errors.As(err, &te) {
			return te.Got
		}
	}
	return raw.Type
}

// decoder converts MessagePack values to JSON, appending to out and
// collecting binary values in atts.
type decoder struct {
	out  []byte
	atts [][]byte
}

// key reads a map key and returns its JavaScript property name, as
// notepack's objects turn keys into strings. Keys that JavaScript would
// name "[object Object]" or by their contents (arrays, maps, binary) are
// refused.
func (d *decoder) key(b []byte) ([]byte, []byte, error) {
	var (
		k   []byte
		err error
	)
	switch msgp.NextType(b) {
	case msgp.StrType:
		k, b, err = msgp.ReadStringZC(b)
	case msgp.IntType:
		var v int64
		v, b, err = msgp.ReadInt64Bytes(b)
		k = strconv.AppendInt(nil, v, 10)
	case msgp.UintType:
		var v uint64
		v, b, err = msgp.ReadUint64Bytes(b)
		k = []byte(jsNumber(float64(v)))
	case msgp.Float32Type, msgp.Float64Type:
		var v float64
		v, b, err = msgp.ReadFloat64Bytes(b)
		k = []byte(jsNumber(v))
	case msgp.NilType:
		b, err = msgp.ReadNilBytes(b)
		k = []byte("null")
	case msgp.BoolType:
		var v bool
		v, b, err = msgp.ReadBoolBytes(b)
		k = strconv.AppendBool(nil, v)
	default:
		if isUndefined(b) {
			return []byte("undefined"), b[3:], nil
		}
		if _, err := msgp.Skip(b); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return nil, nil, errKey
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return k, b, nil
}

// value converts the value b starts with and returns what follows it.
func (d *decoder) value(b []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, errTooDeep
	}
	var err error
	switch msgp.NextType(b) {
	case msgp.NilType:
		b, err = msgp.ReadNilBytes(b)
		d.out = append(d.out, "null"...)
	case msgp.BoolType:
		var v bool
		v, b, err = msgp.ReadBoolBytes(b)
		d.out = strconv.AppendBool(d.out, v)
	case msgp.IntType:
		var v int64
		v, b, err = msgp.ReadInt64Bytes(b)
		d.out = strconv.AppendInt(d.out, v, 10)
	case msgp.UintType:
		var v uint64
		v, b, err = msgp.ReadUint64Bytes(b)
		d.out = strconv.AppendUint(d.out, v, 10)
	case msgp.Float32Type, msgp.Float64Type:
		var v float64
		v, b, err = msgp.ReadFloat64Bytes(b)
		d.out = appendNumber(d.out, v)
	case msgp.StrType:
		var s []byte
		s, b, err = msgp.ReadStringZC(b)
		d.out = appendString(d.out, s)
	case msgp.BinType:
		var v []byte
		if v, b, err = msgp.ReadBytesZC(b); err == nil {
			return b, d.binary(v)
		}
	case msgp.ArrayType:
		return d.array(b, depth)
	case msgp.MapType:
		return d.object(b, depth)
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		return d.extension(b)
	default:
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, msgp.ErrShortBytes)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, msgp.InvalidPrefixError(b[0]))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return b, nil
}

func (d *decoder) array(b []byte, depth int) ([]byte, error) {
	n, b, err := msgp.ReadArrayHeaderBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.out = append(d.out, '[')
	for i := range n {
		if i > 0 {
			d.out = append(d.out, ',')
		}
		if isUndefined(b) {
			d.out = append(d.out, "null"...)
			b = b[3:]
			continue
		}
		if b, err = d.value(b, depth+1); err != nil {
			return nil, err
		}
	}
	d.out = append(d.out, ']')
	return b, nil
}

func (d *decoder) object(b []byte, depth int) ([]byte, error) {
	n, b, err := msgp.ReadMapHeaderBytes(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	d.out = append(d.out, '{')
	first := true
	for range n {
		var k []byte
		if k, b, err = d.key(b); err != nil {
			return nil, err
		}
		if isUndefined(b) {
			b = b[3:] // JSON.stringify leaves the key out
			continue
		}
		if !first {
			d.out = append(d.out, ',')
		}
		first = false
		d.out = appendString(d.out, k)
		d.out = append(d.out, ':')
		if b, err = d.value(b, depth+1); err != nil {
			return nil, err
		}
	}
	d.out = append(d.out, '}')
	return b, nil
}

// extension converts an extension as notepack.io 2.2 decodes it: type 0
// is undefined in fixext1, a Date in fixext8 and an ArrayBuffer in ext
// 8/16/32; anything else becomes [type, data].
func (d *decoder) extension(b []byte) ([]byte, error) {
	lead := b[0]
	raw := msgp.RawExtension{Type: extType(b)}
	rest, err := msgp.ReadExtensionBytes(b, &raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if raw.Type == 0 {
		switch lead {
		case fixext1:
			d.out = append(d.out, "null"...)
			return rest, nil
		case fixext8:
			d.out = appendDate(d.out, int64(binary.BigEndian.Uint64(raw.Data)))
			return rest, nil
		case ext8, ext16, ext32:
			return rest, d.binary(raw.Data)
		}
	}
	d.out = append(d.out, '[')
	d.out = strconv.AppendInt(d.out, int64(raw.Type), 10)
	d.out = append(d.out, ',')
	err = d.binary(raw.Data)
	d.out = append(d.out, ']')
	return rest, err
}

func (d *decoder) binary(v []byte) error {
	if len(d.atts) >= MaxBinaries {
		return errTooManyBins
	}
	d.out = append(d.out, `{"_placeholder":true,"num":`...)
	d.out = strconv.AppendInt(d.out, int64(len(d.atts)), 10)
	d.out = append(d.out, '}')
	if v == nil {
		v = []byte{}
	}
	d.atts = append(d.atts, v)
	return nil
}

// appendDate appends what Date.prototype.toJSON returns for ms: its ISO
// 8601 form, or null beyond the range of dates.
func appendDate(b []byte, ms int64) []byte {
	const maxMs = 8.64e15
	if ms > maxMs || ms < -maxMs {
		return append(b, "null"...)
	}
	t := time.UnixMilli(ms).UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		b = append(b, '"')
		if y < 0 {
			b = append(b, '-')
			y = -y
		} else {
			b = append(b, '+')
		}
		b = fmt.Appendf(b, "%06d", y)
		b = t.AppendFormat(b, "-01-02T15:04:05.000Z")
		return append(b, '"')
	}
	b = append(b, '"')
	b = t.AppendFormat(b, "2006-01-02T15:04:05.000Z")
	return append(b, '"')
}

// appendNumber appends f as JSON.stringify writes it; NaN and infinities,
// which JSON lacks, as null.
func appendNumber(b []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	return append(b, jsNumber(f)...)
}

// jsNumber returns String(f) in JavaScript, for finite f.
func jsNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		if math.IsNaN(f) {
			return "NaN"
		}
		if f > 0 {
			return "Infinity"
		}
		return "-Infinity"
	}
	abs := math.Abs(f)
	if abs == 0 {
		return "0"
	}
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1e+21, 1.5e-07
	for i := 0; i < len(s); i++ {
		if s[i] == 'e' && i+2 < len(s) && s[i+2] == '0' {
			j := i + 2
			for j < len(s)-1 && s[j] == '0' {
				j++
			}
			s = s[:i+2] + s[j:]
			break
		}
	}
	return s
}

// appendString appends s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, as Buffer.toString does.
func appendString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

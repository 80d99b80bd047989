// Package msgpack is the MessagePack codec of the Redis adapter: the
// mapping of notepack.io 3.0.1, the codec of the Node Redis adapter and
// emitter, between JavaScript values and MessagePack.
//
// Values are represented by these Go types:
//
//	nil          nil
//	bool         true / false
//	int64        integers that fit (every width decodes to int64)
//	uint64       integers above math.MaxInt64 (uint64 format only)
//	float64      float32 and float64 formats
//	string       str formats
//	[]byte       bin formats, and the legacy ext type 0
//	[]any        arrays
//	Map          maps with string keys, in wire order
//	Undefined    the legacy fixext1 type 0 (JavaScript undefined)
//	time.Time    the timestamp extension (type -1)
//
// The encoder takes these types and also the other Go integer and float
// types, []string and map[string]any (keys sorted). Numbers follow
// JavaScript: a float64 holding an integer is written as the smallest
// integer format, as notepack writes every integer-valued number.
package msgpack

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
)

// Map is a MessagePack map with string keys, in order.
type Map []Entry

// Entry is one key and value of a Map.
type Entry struct {
	Key   string
	Value any
}

// Get returns the value of key and whether it is present.
func (m Map) Get(key string) (any, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return nil, false
}

// Undefined is JavaScript's undefined, written by old notepack versions as
// fixext1 type 0. It encodes as nil, and a Map entry holding it is left
// out, as notepack leaves out object keys whose value is undefined.
type Undefined struct{}

// Marshal encodes v.
func Marshal(v any) ([]byte, error) {
	return Append(nil, v)
}

// Append appends the encoding of v to b.
func Append(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil, Undefined:
		return append(b, 0xc0), nil
	case bool:
		if v {
			return append(b, 0xc3), nil
		}
		return append(b, 0xc2), nil
	case int:
		return AppendInt(b, int64(v)), nil
	case int8:
		return AppendInt(b, int64(v)), nil
	case int16:
		return AppendInt(b, int64(v)), nil
	case int32:
		return AppendInt(b, int64(v)), nil
	case int64:
		return AppendInt(b, v), nil
	case uint:
		return AppendUint(b, uint64(v)), nil
	case uint8:
		return AppendUint(b, uint64(v)), nil
	case uint16:
		return AppendUint(b, uint64(v)), nil
	case uint32:
		return AppendUint(b, uint64(v)), nil
	case uint64:
		return AppendUint(b, v), nil
	case float32:
		return AppendFloat(b, float64(v)), nil
	case float64:
		return AppendFloat(b, v), nil
	case string:
		return AppendString(b, v), nil
	case []byte:
		return AppendBinary(b, v), nil
	case []string:
		b = appendArrayHeader(b, len(v))
		for _, s := range v {
			b = AppendString(b, s)
		}
		return b, nil
	case []any:
		b = appendArrayHeader(b, len(v))
		var err error
		for _, e := range v {
			if b, err = Append(b, e); err != nil {
				return nil, err
			}
		}
		return b, nil
	case Map:
		n := 0
		for _, e := range v {
			if _, undef := e.Value.(Undefined); !undef {
				n++
			}
		}
		b = appendMapHeader(b, n)
		var err error
		for _, e := range v {
			if _, undef := e.Value.(Undefined); undef {
				continue
			}
			b = AppendString(b, e.Key)
			if b, err = Append(b, e.Value); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		m := make(Map, len(keys))
		for i, k := range keys {
			m[i] = Entry{k, v[k]}
		}
		return Append(b, m)
	case time.Time:
		return appendTimestamp(b, v), nil
	}
	return nil, fmt.Errorf("msgpack: cannot encode a value of type %T", v)
}

// AppendInt appends an integer in its smallest format.
func AppendInt(b []byte, i int64) []byte {
	if i >= 0 {
		return AppendUint(b, uint64(i))
	}
	switch {
	case i >= -32:
		return append(b, byte(i))
	case i >= math.MinInt8:
		return append(b, 0xd0, byte(i))
	case i >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(i))
	case i >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(i))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(i))
}

// AppendUint appends a non-negative integer in its smallest format.
func AppendUint(b []byte, u uint64) []byte {
	switch {
	case u < 128:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

// AppendFloat appends a JavaScript number: an integer format when f holds
// an integer that one can represent, float64 otherwise (fractions, NaN,
// infinities, integers beyond 64 bits).
func AppendFloat(b []byte, f float64) []byte {
	if f == math.Trunc(f) && !math.IsInf(f, 0) {
		switch {
		case f >= 0 && f < 1<<64:
			return AppendUint(b, uint64(f))
		case f < 0 && f >= math.MinInt64:
			return AppendInt(b, int64(f))
		}
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// AppendString appends s as a str.
func AppendString(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

// AppendBinary appends p as a bin.
func AppendBinary(b []byte, p []byte) []byte {
	n := len(p)
	switch {
	case n <= math.MaxUint8:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, p...)
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

// appendTimestamp appends the timestamp extension (type -1) in its
// smallest form, as notepack writes a Date.
func appendTimestamp(b []byte, t time.Time) []byte {
	sec, nsec := t.Unix(), uint32(t.Nanosecond())
	switch {
	case sec >= 0 && sec>>34 == 0 && nsec == 0 && sec <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(sec))
	case sec >= 0 && sec>>34 == 0:
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), uint64(nsec)<<34|uint64(sec))
	}
	b = binary.BigEndian.AppendUint32(append(b, 0xc7, 12, 0xff), nsec)
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}

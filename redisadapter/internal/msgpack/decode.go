package msgpack

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// maxDepth bounds the nesting of arrays and maps a message may have.
const maxDepth = 1000

// ErrTruncated is returned when the input ends inside a value.
var ErrTruncated = errors.New("msgpack: unexpected end of data")

// Unmarshal decodes the single value that data holds. Bytes left after it
// are an error. Decoded str and bin values do not share memory with data.
func Unmarshal(data []byte) (any, error) {
	d := decoder{data: data}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if d.pos != len(d.data) {
		return nil, fmt.Errorf("msgpack: %d bytes after the value", len(d.data)-d.pos)
	}
	return v, nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || len(d.data)-d.pos < n {
		return nil, ErrTruncated
	}
	b := d.data[d.pos : d.pos+n]
	d.pos += n
	return b, nil
}

func (d *decoder) uint(n int) (uint64, error) {
	b, err := d.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// length reads a length of n bytes.
func (d *decoder) length(n int) (int, error) {
	u, err := d.uint(n)
	if err != nil {
		return 0, err
	}
	if u > math.MaxInt32 {
		return 0, fmt.Errorf("msgpack: length %d too large", u)
	}
	return int(u), nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("msgpack: nested deeper than %d", maxDepth)
	}
	b, err := d.take(1)
	if err != nil {
		return nil, err
	}
	c := b[0]
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xe0 == 0xa0:
		return d.str(int(c & 0x1f))
	case c&0xf0 == 0x90:
		return d.array(int(c&0x0f), depth)
	case c&0xf0 == 0x80:
		return d.mapN(int(c&0x0f), depth)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6:
		n, err := d.length(1 << (c - 0xc4))
		if err != nil {
			return nil, err
		}
		return d.bin(n)
	case 0xc7, 0xc8, 0xc9:
		n, err := d.length(1 << (c - 0xc7))
		if err != nil {
			return nil, err
		}
		return d.ext(n, false)
	case 0xca:
		u, err := d.uint(4)
		if err != nil {
			return nil, err
		}
		return float64(math.Float32frombits(uint32(u))), nil
	case 0xcb:
		u, err := d.uint(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(u), nil
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := d.uint(1 << (c - 0xcc))
		if err != nil {
			return nil, err
		}
		if u > math.MaxInt64 {
			return u, nil
		}
		return int64(u), nil
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		u, err := d.uint(n)
		if err != nil {
			return nil, err
		}
		switch n {
		case 1:
			return int64(int8(u)), nil
		case 2:
			return int64(int16(u)), nil
		case 4:
			return int64(int32(u)), nil
		}
		return int64(u), nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return d.ext(1<<(c-0xd4), true)
	case 0xd9, 0xda, 0xdb:
		n, err := d.length(1 << (c - 0xd9))
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case 0xdc, 0xdd:
		n, err := d.length(2 << (c - 0xdc))
		if err != nil {
			return nil, err
		}
		return d.array(n, depth)
	case 0xde, 0xdf:
		n, err := d.length(2 << (c - 0xde))
		if err != nil {
			return nil, err
		}
		return d.mapN(n, depth)
	}
	return nil, fmt.Errorf("msgpack: invalid format byte 0x%02x at offset %d", c, d.pos-1)
}

func (d *decoder) str(n int) (string, error) {
	b, err := d.take(n)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (d *decoder) bin(n int) ([]byte, error) {
	b, err := d.take(n)
	if err != nil {
		return nil, err
	}
	return append([]byte{}, b...), nil
}

func (d *decoder) array(n int, depth int) ([]any, error) {
	if n > len(d.data)-d.pos { // every element takes a byte at least
		return nil, ErrTruncated
	}
	a := make([]any, n)
	for i := range a {
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a[i] = v
	}
	return a, nil
}

func (d *decoder) mapN(n int, depth int) (Map, error) {
	if 2*n > len(d.data)-d.pos {
		return nil, ErrTruncated
	}
	m := make(Map, 0, n)
	for range n {
		k, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("msgpack: map key of type %T, want a string", k)
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m = append(m, Entry{key, v})
	}
	return m, nil
}

// ext decodes an extension of n data bytes (after its type byte).
func (d *decoder) ext(n int, fixed bool) (any, error) {
	tb, err := d.take(1)
	if err != nil {
		return nil, err
	}
	typ := int8(tb[0])
	data, err := d.take(n)
	if err != nil {
		return nil, err
	}
	switch typ {
	case 0:
		// notepack 2.x: fixext1 type 0 is undefined, any other ext of
		// type 0 an ArrayBuffer.
		if fixed && n == 1 {
			return Undefined{}, nil
		}
		return append([]byte{}, data...), nil
	case -1:
		switch n {
		case 4:
			return time.Unix(int64(binary.BigEndian.Uint32(data)), 0).UTC(), nil
		case 8:
			u := binary.BigEndian.Uint64(data)
			return time.Unix(int64(u&(1<<34-1)), int64(u>>34)).UTC(), nil
		case 12:
			nsec := binary.BigEndian.Uint32(data)
			sec := int64(binary.BigEndian.Uint64(data[4:]))
			return time.Unix(sec, int64(nsec)).UTC(), nil
		}
		return nil, fmt.Errorf("msgpack: timestamp of %d bytes", n)
	}
	return nil, fmt.Errorf("msgpack: unsupported extension type %d", typ)
}

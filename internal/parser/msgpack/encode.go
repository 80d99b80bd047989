package msgpack

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally/internal/parser"
)

// maxEncodeDepth bounds the nesting of the JSON data encoded; data that
// rally holds never comes near it.
const maxEncodeDepth = 10000

var errJSON = errors.New("msgpack: invalid JSON data")

// Encode appends the MessagePack form of p to dst: a map of type, data,
// nsp and id (when p has one), in the order of Node's server. BINARY_EVENT
// and BINARY_ACK are written as EVENT and ACK, their placeholders as the
// attachments they refer to.
func Encode(dst []byte, p *parser.Packet) ([]byte, error) {
	typ := p.Type
	switch typ {
	case parser.BinaryEvent:
		typ = parser.Event
	case parser.BinaryAck:
		typ = parser.Ack
	}
	n := uint32(2)
	if len(p.Data) > 0 {
		n++
	}
	if p.ID >= 0 {
		n++
	}
	nsp := p.Namespace
	if nsp == "" {
		nsp = "/"
	}
	if dst == nil {
		size := len(p.Data) + len(p.Namespace) + 32
		for _, a := range p.Attachments {
			size += len(a)
		}
		dst = make([]byte, 0, size)
	}
	e := encoder{out: dst, atts: p.Attachments, counts: countElements(p.Data)}
	e.out = msgp.AppendMapHeader(e.out, n)
	e.out = msgp.AppendString(e.out, "type")
	e.out = msgp.AppendUint64(e.out, uint64(typ))
	if len(p.Data) > 0 {
		e.out = msgp.AppendString(e.out, "data")
		rest, err := e.value(p.Data, 0)
		if err != nil {
			return nil, err
		}
		if len(skipSpace(rest)) > 0 {
			return nil, errJSON
		}
	}
	e.out = msgp.AppendString(e.out, "nsp")
	e.out = msgp.AppendString(e.out, nsp)
	if p.ID >= 0 {
		e.out = msgp.AppendString(e.out, "id")
		e.out = msgp.AppendUint64(e.out, uint64(p.ID))
	}
	return e.out, nil
}

// encoder converts JSON to MessagePack, appending to out.
type encoder struct {
	out  []byte
	atts [][]byte
	// counts holds the element count of every array and object of the
	// JSON text, in the order they open; next is the next one's index.
	counts []uint32
	next   int
}

// countElements returns the element count of each array and object of
// the JSON text j, in the order they open: MessagePack headers need them
// before the elements. One pass, whatever the nesting.
func countElements(j []byte) []uint32 {
	var counts []uint32
	type level struct {
		idx      int
		nonEmpty bool
	}
	var stack []level
	for i := 0; i < len(j); i++ {
		c := j[i]
		switch c {
		case ' ', '\t', '\n', '\r', ':':
			continue
		case ',':
			if len(stack) > 0 {
				counts[stack[len(stack)-1].idx]++
			}
			continue
		case ']', '}':
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				if top.nonEmpty {
					counts[top.idx]++ // elements are commas + 1
				}
			}
			continue
		}
		if len(stack) > 0 {
			stack[len(stack)-1].nonEmpty = true
		}
		switch c {
		case '[', '{':
			counts = append(counts, 0)
			stack = append(stack, level{idx: len(counts) - 1})
		case '"':
			for i++; i < len(j) && j[i] != '"'; i++ {
				if j[i] == '\\' {
					i++
				}
			}
		}
	}
	return counts
}

var placeholderHead = []byte(`{"_placeholder":true,"num":`)

func skipSpace(j []byte) []byte {
	for len(j) > 0 && (j[0] == ' ' || j[0] == '\t' || j[0] == '\n' || j[0] == '\r') {
		j = j[1:]
	}
	return j
}

// value converts the JSON value j starts with and returns what follows.
func (e *encoder) value(j []byte, depth int) ([]byte, error) {
	if depth > maxEncodeDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d", errJSON, maxEncodeDepth)
	}
	j = skipSpace(j)
	if len(j) == 0 {
		return nil, errJSON
	}
	switch c := j[0]; {
	case c == '{':
		if rest, ok := e.placeholder(j); ok {
			return rest, nil
		}
		return e.container(j[1:], '}', depth)
	case c == '[':
		return e.container(j[1:], ']', depth)
	case c == '"':
		s, rest, err := jsonString(j)
		if err != nil {
			return nil, err
		}
		e.out = msgp.AppendStringFromBytes(e.out, s)
		return rest, nil
	case bytes.HasPrefix(j, []byte("true")):
		e.out = msgp.AppendBool(e.out, true)
		return j[4:], nil
	case bytes.HasPrefix(j, []byte("false")):
		e.out = msgp.AppendBool(e.out, false)
		return j[5:], nil
	case bytes.HasPrefix(j, []byte("null")):
		e.out = msgp.AppendNil(e.out)
		return j[4:], nil
	case c == '-' || c >= '0' && c <= '9':
		return e.number(j)
	}
	return nil, errJSON
}

// placeholder writes the attachment of a placeholder as bin, if j starts
// with one (in the compact form rally and Node write) that refers to an
// attachment.
func (e *encoder) placeholder(j []byte) ([]byte, bool) {
	if len(e.atts) == 0 || !bytes.HasPrefix(j, placeholderHead) {
		return nil, false
	}
	rest := j[len(placeholderHead):]
	i, num := 0, 0
	for i < len(rest) && i < 8 && rest[i] >= '0' && rest[i] <= '9' {
		num = num*10 + int(rest[i]-'0')
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != '}' || num >= len(e.atts) {
		return nil, false
	}
	e.out = msgp.AppendBytes(e.out, e.atts[num])
	e.next++ // the object's count
	return rest[i+1:], true
}

// container converts the elements of an array or object up to its end
// byte, after the header of the count countElements found.
func (e *encoder) container(j []byte, end byte, depth int) ([]byte, error) {
	if e.next >= len(e.counts) {
		return nil, errJSON
	}
	want := e.counts[e.next]
	e.next++
	if end == '}' {
		e.out = msgp.AppendMapHeader(e.out, want)
	} else {
		e.out = msgp.AppendArrayHeader(e.out, want)
	}
	var n uint32
	var err error
	for {
		j = skipSpace(j)
		if len(j) > 0 && j[0] == end && n == 0 {
			j = j[1:]
			break
		}
		if end == '}' {
			var k []byte
			if k, j, err = jsonString(skipSpace(j)); err != nil {
				return nil, err
			}
			e.out = msgp.AppendStringFromBytes(e.out, k)
			j = skipSpace(j)
			if len(j) == 0 || j[0] != ':' {
				return nil, errJSON
			}
			j = j[1:]
		}
		if j, err = e.value(j, depth+1); err != nil {
			return nil, err
		}
		n++
		j = skipSpace(j)
		if len(j) == 0 {
			return nil, errJSON
		}
		if j[0] == ',' {
			j = j[1:]
			continue
		}
		if j[0] != end {
			return nil, errJSON
		}
		j = j[1:]
		break
	}
	if n != want {
		return nil, errJSON
	}
	return j, nil
}

// jsonString returns the contents of the JSON string j starts with, and
// what follows it.
func jsonString(j []byte) ([]byte, []byte, error) {
	if len(j) == 0 || j[0] != '"' {
		return nil, nil, errJSON
	}
	escaped := false
	for i := 1; i < len(j); i++ {
		switch j[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			if !escaped {
				return j[1:i], j[i+1:], nil
			}
			var s string
			if err := json.Unmarshal(j[:i+1], &s); err != nil {
				return nil, nil, errJSON
			}
			return []byte(s), j[i+1:], nil
		}
	}
	return nil, nil, errJSON
}

// number writes a JSON number as notepack writes a JavaScript number:
// integers in the smallest int or uint format, others as float64.
func (e *encoder) number(j []byte) ([]byte, error) {
	i, float := 0, false
	for i < len(j) {
		c := j[i]
		if c == '.' || c == 'e' || c == 'E' {
			float = true
		} else if c != '-' && c != '+' && (c < '0' || c > '9') {
			break
		}
		i++
	}
	tok, rest := string(j[:i]), j[i:]
	if !float {
		if v, err := strconv.ParseInt(tok, 10, 64); err == nil {
			e.appendInt(v)
			return rest, nil
		}
		if v, err := strconv.ParseUint(tok, 10, 64); err == nil {
			e.out = msgp.AppendUint64(e.out, v)
			return rest, nil
		}
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, errJSON
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		e.appendInt(int64(f))
	} else {
		e.out = msgp.AppendFloat64(e.out, f)
	}
	return rest, nil
}

func (e *encoder) appendInt(v int64) {
	if v >= 0 {
		e.out = msgp.AppendUint64(e.out, uint64(v))
	} else {
		e.out = msgp.AppendInt64(e.out, v)
	}
}

package parser

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// RawReceiver is a destination that takes an argument undecoded: its JSON
// text, byte for byte but for placeholder numbers, which count from 0 over
// the attachments it gets, those its placeholders refer to.
type RawReceiver interface {
	ReceiveRaw(text json.RawMessage, attachments [][]byte)
}

// RawSender is an argument that encodes itself as JSON text whose
// placeholders count from 0 over its own attachments.
type RawSender interface {
	SendRaw() (text json.RawMessage, attachments [][]byte)
}

// localize renumbers the placeholders of an argument over the attachments
// it refers to, in order of first appearance, and returns those.
func localize(text json.RawMessage, attachments [][]byte) (json.RawMessage, [][]byte, error) {
	var own [][]byte
	index := map[int]int{} // packet's number → the argument's
	out, err := rewritePlaceholders(text, func(n int) ([]byte, error) {
		if n < 0 || n >= len(attachments) {
			return nil, fmt.Errorf("%w: placeholder %d of %d attachments", ErrIllegalAttach, n, len(attachments))
		}
		i, seen := index[n]
		if !seen {
			i = len(own)
			index[n] = i
			own = append(own, attachments[n])
		}
		return placeholder(i), nil
	})
	return bytes.Clone(out), own, err
}

func placeholder(i int) []byte {
	return append(strconv.AppendInt(bytes.Clone(placeholderHead), int64(i), 10), '}')
}

// rewritePlaceholders returns text with every placeholder object replaced
// by what repl makes of its number (a placeholder, or a quoted marker);
// the rest is left byte for byte.
func rewritePlaceholders(text []byte, repl func(n int) ([]byte, error)) ([]byte, error) {
	spans, err := placeholderSpans(text)
	if err != nil || len(spans) == 0 {
		return text, err
	}
	out := make([]byte, 0, len(text)+8*len(spans))
	last := 0
	for _, sp := range spans {
		r, err := repl(sp.num)
		if err != nil {
			return nil, err
		}
		out = append(out, text[last:sp.start]...)
		out = append(out, r...)
		last = sp.end
	}
	return append(out, text[last:]...), nil
}

type span struct{ start, end, num int }

// placeholderSpans finds the objects of text that are placeholders, as the
// decoder and the official parser take them: "_placeholder" is true and
// "num" a non-negative integer, whatever else the object holds (it is
// replaced whole).
func placeholderSpans(text []byte) ([]span, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.UseNumber()
	type object struct {
		start     int
		isMarker  bool // "_placeholder": true seen
		num       int
		hasNum    bool
		key       string // the key whose value comes next
		expectKey bool
	}
	var stack []*object
	var spans []span
	for {
		offset := int(dec.InputOffset())
		tok, err := dec.Token()
		if err == io.EOF {
			return spans, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalidPayload, err)
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if d == '{' {
					// offset is before the delimiter or the comma and
					// spaces ahead of it: find the brace itself.
					start := offset + bytes.IndexByte(text[offset:], '{')
					stack = append(stack, &object{start: start, expectKey: true})
				} else {
					stack = append(stack, nil)
				}
			case '}':
				if top != nil && top.isMarker && top.hasNum {
					for len(spans) > 0 && spans[len(spans)-1].start > top.start {
						spans = spans[:len(spans)-1] // inside this one, replaced with it
					}
					spans = append(spans, span{start: top.start, end: int(dec.InputOffset()), num: top.num})
				}
				stack = stack[:len(stack)-1]
			case ']':
				stack = stack[:len(stack)-1]
			}
			if len(stack) > 0 && stack[len(stack)-1] != nil && (d == '}' || d == ']') {
				stack[len(stack)-1].expectKey = true
			}
			continue
		}
		if top == nil {
			continue // an array element, or the top-level value
		}
		if top.expectKey {
			top.key, _ = tok.(string)
			top.expectKey = false
			continue
		}
		switch top.key {
		case "_placeholder":
			top.isMarker = tok == true
		case "num":
			if n, ok := tok.(json.Number); ok {
				if v, err := strconv.Atoi(n.String()); err == nil && v >= 0 {
					top.num, top.hasNum = v, true
				}
			}
		}
		top.expectKey = true
	}
}

// unlocalize turns the placeholders of a RawSender's text into markers of
// sub's attachments, so that placeMarkers numbers them over the packet.
func (s *substitution) unlocalize(text json.RawMessage, own [][]byte) (json.RawMessage, error) {
	return rewritePlaceholders(text, func(n int) ([]byte, error) {
		if n >= len(own) {
			return nil, fmt.Errorf("%w: placeholder %d of %d attachments", ErrIllegalAttach, n, len(own))
		}
		s.attachments = append(s.attachments, own[n])
		return strconv.AppendQuote(nil, markerString(len(s.attachments)-1)), nil
	})
}

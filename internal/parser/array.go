package parser

import (
	"encoding/json"
	"errors"
)

var errNotArray = errors.New("not a JSON array")

// SplitArray splits a valid JSON array into its elements without decoding
// them.
func SplitArray(data []byte) ([]json.RawMessage, error) {
	// Most packets are an event name and a few arguments: one allocation.
	out := make([]json.RawMessage, 0, 4)
	err := eachElement(data, func(elem []byte) bool {
		out = append(out, elem)
		return true
	})
	return out, err
}

// firstElement returns the first element of a valid JSON array.
func firstElement(data []byte) (first []byte, err error) {
	err = eachElement(data, func(elem []byte) bool {
		first = elem
		return false
	})
	return first, err
}

// eachElement calls fn with each element of the valid JSON array data until fn
// returns false.
func eachElement(data []byte, fn func(elem []byte) bool) error {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '[' {
		return errNotArray
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == ']' {
		return nil
	}
	for i < len(data) {
		end := skipValue(data, i)
		if end <= i {
			return errNotArray
		}
		if !fn(data[i:end]) {
			return nil
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			break
		}
		if data[i] == ']' {
			return nil
		}
		if data[i] != ',' {
			return errNotArray
		}
		i = skipSpace(data, i+1)
	}
	return errNotArray
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the index just after the JSON value starting at i. The
// input is assumed to be valid JSON.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '[', '{':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '[', '{':
				depth++
			case ']', '}':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(data) {
			switch data[i] {
			case ',', ']', '}', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// skipString returns the index just after the JSON string starting at i,
// or len(data) when the string is not terminated.
func skipString(data []byte, i int) int {
	i++
	for i < len(data) {
		switch data[i] {
		case '\\':
			i += 2
			continue
		case '"':
			return i + 1
		}
		i++
	}
	return len(data) // not i: a final backslash steps past the end
}

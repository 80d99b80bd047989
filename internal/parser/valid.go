package parser

// maxNesting is encoding/json's limit on nested arrays and objects.
const maxNesting = 10000

// validJSON reports whether data is exactly one JSON value (RFC 8259) with
// optional whitespace around it: what encoding/json.Valid reports, without
// its state machine called for every byte. The decoder checks every packet
// payload with it.
func validJSON(data []byte) bool {
	var small [64]byte
	open := small[:0] // '[' or '{' for each container entered
	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return false
		}
		switch c := data[i]; {
		case c == '[' || c == '{':
			if len(open) == maxNesting {
				return false // counting this one, empty or not
			}
			end := byte(']')
			if c == '{' {
				end = '}'
			}
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == end {
				i++
				break // an empty container is a whole value
			}
			open = append(open, c)
			if c == '{' {
				if i = validKey(data, i); i < 0 {
					return false
				}
			}
			continue // its first element
		case c == '"':
			i = validString(data, i)
		case c == '-' || c >= '0' && c <= '9':
			i = validNumber(data, i)
		case c == 't':
			i = validLiteral(data, i, "true")
		case c == 'f':
			i = validLiteral(data, i, "false")
		case c == 'n':
			i = validLiteral(data, i, "null")
		default:
			return false
		}
		if i < 0 {
			return false
		}

		// A value ended before i: close containers until one goes on.
		for {
			i = skipSpace(data, i)
			if len(open) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			top := open[len(open)-1]
			if data[i] == ',' {
				i = skipSpace(data, i+1)
				if top == '{' {
					if i = validKey(data, i); i < 0 {
						return false
					}
				}
				break
			}
			if top == '[' && data[i] != ']' || top == '{' && data[i] != '}' {
				return false
			}
			open = open[:len(open)-1]
			i++
		}
	}
}

// validKey checks an object key and its colon at i and returns the index of
// the value after them, or -1.
func validKey(data []byte, i int) int {
	if i >= len(data) || data[i] != '"' {
		return -1
	}
	if i = validString(data, i); i < 0 {
		return -1
	}
	if i = skipSpace(data, i); i >= len(data) || data[i] != ':' {
		return -1
	}
	return skipSpace(data, i+1)
}

// validString checks the string token at i and returns the index after it,
// or -1. Bytes that are not UTF-8 are allowed, as encoding/json allows
// them.
func validString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(data) {
				return -1
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(data) {
					return -1
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// validNumber checks the number token at i and returns the index after it,
// or -1.
func validNumber(data []byte, i int) int {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return -1
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = digits(data, i)
	default:
		return -1
	}
	if i < len(data) && data[i] == '.' {
		if i+1 >= len(data) || !isDigit(data[i+1]) {
			return -1
		}
		i = digits(data, i+1)
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return -1
		}
		i = digits(data, i)
	}
	return i
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(data []byte, i int) int {
	for i < len(data) && isDigit(data[i]) {
		i++
	}
	return i
}

// validLiteral checks that word is at i and returns the index after it, or
// -1.
func validLiteral(data []byte, i int, word string) int {
	if len(data)-i < len(word) || string(data[i:i+len(word)]) != word {
		return -1
	}
	return i + len(word)
}

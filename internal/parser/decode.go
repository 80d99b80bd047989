package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Decoding errors. Every error returned by a Decoder wraps one of them.
var (
	ErrUnknownType      = errors.New("unknown packet type")
	ErrIllegalAttach    = errors.New("illegal attachments")
	ErrTooManyAttach    = errors.New("too many attachments")
	ErrInvalidPayload   = errors.New("invalid payload")
	ErrInvalidID        = errors.New("invalid ack id")
	ErrUnexpectedText   = errors.New("got plaintext data when reconstructing a packet")
	ErrUnexpectedBinary = errors.New("got binary data when not reconstructing a packet")
	ErrInvalidNamespace = errors.New("invalid namespace")
)

// reservedEvents are the event names neither side may send.
var reservedEvents = map[string]bool{
	"connect":        true,
	"connect_error":  true,
	"disconnect":     true,
	"disconnecting":  true,
	"newListener":    true,
	"removeListener": true,
}

// IsReserved reports whether name is an event name reserved by Socket.IO.
func IsReserved(name string) bool { return reservedEvents[name] }

// Decoder turns a stream of Engine.IO messages into Socket.IO packets,
// reassembling binary attachments. It is not safe for concurrent use. The
// decoded packets keep references to the slices passed in.
type Decoder struct {
	pending *Packet
	want    int
}

// Pending reports whether the decoder waits for binary attachments.
func (d *Decoder) Pending() bool { return d.pending != nil }

// DecodeText decodes one text message. It returns nil and no error when the
// packet announces binary attachments that have yet to arrive.
func (d *Decoder) DecodeText(text []byte) (*Packet, error) {
	if d.pending != nil {
		d.pending = nil
		return nil, ErrUnexpectedText
	}
	p, n, err := decodeText(text)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		p.Attachments = make([][]byte, 0, n)
		d.pending, d.want = p, n
		return nil, nil
	}
	return p, nil
}

// DecodeBinary adds one binary message to the packet being reassembled. It
// returns the packet once its last attachment has arrived.
func (d *Decoder) DecodeBinary(data []byte) (*Packet, error) {
	p := d.pending
	if p == nil {
		return nil, ErrUnexpectedBinary
	}
	p.Attachments = append(p.Attachments, data)
	if len(p.Attachments) < d.want {
		return nil, nil
	}
	d.pending = nil
	if err := checkPlaceholders(p.Data, len(p.Attachments)); err != nil {
		return nil, err
	}
	return p, nil
}

// Decode decodes a packet that carries no attachments, such as a CONNECT.
// A packet announcing attachments is an error.
func Decode(text []byte) (*Packet, error) {
	p, n, err := decodeText(text)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		return nil, fmt.Errorf("%w: %d attachments announced", ErrIllegalAttach, n)
	}
	return p, nil
}

// decodeText parses the text form of a packet and returns it with the number
// of attachments it announces.
func decodeText(s []byte) (*Packet, int, error) {
	if len(s) == 0 || s[0] < '0' || s[0] > '6' {
		return nil, 0, ErrUnknownType
	}
	p := &Packet{Type: Type(s[0] - '0'), Namespace: "/", ID: NoID}
	i := 1

	attachments := 0
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		start := i
		for i < len(s) && s[i] != '-' {
			if s[i] < '0' || s[i] > '9' || i-start > 3 {
				return nil, 0, ErrIllegalAttach
			}
			attachments = attachments*10 + int(s[i]-'0')
			i++
		}
		if i == start || i == len(s) {
			return nil, 0, ErrIllegalAttach
		}
		i++ // '-'
		if attachments < 1 {
			return nil, 0, ErrIllegalAttach
		}
		if attachments > MaxAttachments {
			return nil, 0, ErrTooManyAttach
		}
	}

	if i < len(s) && s[i] == '/' {
		start := i
		for i < len(s) && s[i] != ',' {
			i++
		}
		if i-start > MaxNamespaceLen {
			return nil, 0, ErrInvalidNamespace
		}
		p.Namespace = string(s[start:i])
		if i < len(s) {
			i++ // ','
		}
	}

	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		var id int64
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			id = id*10 + int64(s[i]-'0')
			if id > MaxID {
				return nil, 0, ErrInvalidID
			}
			i++
		}
		p.ID = id
	}

	if i < len(s) {
		p.Data = json.RawMessage(s[i:])
		if !validJSON(p.Data) {
			return nil, 0, ErrInvalidPayload
		}
	}
	if err := checkPayload(p); err != nil {
		return nil, 0, err
	}
	return p, attachments, nil
}

// checkPayload applies the per-type payload rules of the official parser.
func checkPayload(p *Packet) error {
	kind := jsonKind(p.Data)
	ok := false
	switch p.Type {
	case Connect:
		ok = kind == 0 || kind == '{'
	case Disconnect:
		ok = kind == 0
	case Event, BinaryEvent:
		ok = kind == '[' && validEventName(p.Data)
	case Ack, BinaryAck:
		ok = kind == '['
	case ConnectError:
		ok = kind == '{' || kind == '"'
	}
	if !ok {
		return fmt.Errorf("%w for %s", ErrInvalidPayload, p.Type)
	}
	if p.ID != NoID && p.Type != Event && p.Type != BinaryEvent && p.Type != Ack && p.Type != BinaryAck {
		return fmt.Errorf("%w for %s", ErrInvalidPayload, p.Type)
	}
	if (p.Type == Ack || p.Type == BinaryAck) && p.ID == NoID {
		return fmt.Errorf("%w: %s without id", ErrInvalidID, p.Type)
	}
	return nil
}

// jsonKind returns the first byte of a JSON value ('{', '[', '"', 'n', 't',
// 'f' or a digit or '-'), or 0 when data is empty.
func jsonKind(data []byte) byte {
	for _, c := range data {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

// validEventName reports whether the first element of the JSON array data is
// a usable event name: a number, or a string that is not reserved.
func validEventName(data []byte) bool {
	if first, err := firstElement(data); err == nil {
		if plain, ok := plainString(first); ok {
			return len(plain) <= MaxEventLen && !reservedEvents[string(plain)] // no copy
		}
	}
	name, ok := EventName(data)
	return ok && len(name) <= MaxEventLen && !reservedEvents[name]
}

// plainString returns the contents of a valid JSON string token that has
// no escape sequence, as most event names are.
func plainString(tok []byte) ([]byte, bool) {
	if len(tok) < 2 || tok[0] != '"' {
		return nil, false
	}
	inner := tok[1 : len(tok)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return nil, false // escapes to decode, or bytes to replace
	}
	return inner, true
}

// EventName returns the event name of an EVENT payload: its first element, a
// string or a number (numbers are returned in their JSON form).
func EventName(data []byte) (string, bool) {
	first, err := firstElement(data)
	if err != nil || len(first) == 0 {
		return "", false
	}
	switch c := first[0]; {
	case c == '"':
		if plain, ok := plainString(first); ok {
			return string(plain), true
		}
		var s string
		if json.Unmarshal(first, &s) != nil {
			return "", false
		}
		return s, true
	case c == '-' || (c >= '0' && c <= '9'):
		return numberName(first)
	}
	return "", false
}

// numberName returns the event name JavaScript gives a numeric name:
// String(n), so 1.0, 1e2 and -0 name the events "1", "100" and "0".
func numberName(text []byte) (string, bool) {
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil || math.IsInf(f, 0) {
		return "", false
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f+0, 'f', -1, 64), true // +0 turns -0 into 0
	}
	abs := math.Abs(f)
	if abs >= 1e-6 && abs < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	// JavaScript's exponent form: 1e+21, 1.5e-7.
	s := strconv.FormatFloat(f, 'e', -1, 64)
	mant, exp, _ := strings.Cut(s, "e")
	sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
	return mant + "e" + sign + digits, true
}

// ValidateEvent checks an EVENT payload that did not come from a client
// (another server's): a JSON array led by a usable event name, whose
// placeholders all refer to one of n attachments.
func ValidateEvent(data json.RawMessage, n int) error {
	if !validJSON(data) || jsonKind(data) != '[' || !validEventName(data) {
		return ErrInvalidPayload
	}
	if n > 0 {
		return checkPlaceholders(data, n)
	}
	return nil
}

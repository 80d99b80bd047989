package engineio

import (
	"encoding/base64"
	"errors"
	"net/url"
	"strconv"
	"unicode/utf8"
)

// Engine.IO protocol revisions, as Session.Protocol reports them.
const (
	Protocol3 = 3 // Socket.IO v2 clients (EIO=3), with Options.AllowEIO3
	Protocol4 = 4
)

// protocolOf returns the revision a request asks for. As in the official
// server, anything but EIO=4 (no EIO at all included) is revision 3.
func protocolOf(q url.Values) int {
	if q.Get("EIO") == "4" {
		return Protocol4
	}
	return Protocol3
}

// Engine.IO 3 frames a binary message as its packet type (the byte 4)
// followed by the data, on every transport. A session of revision 3 takes
// binary frames in that form: EIO3Frames makes them, once for every
// session of that revision a broadcast reaches.

// EIO3Frames returns frames with each binary frame's data preceded by the
// message type byte, as Session.Send of a revision 3 session takes them.
// Text frames are shared with frames; frames is returned itself when it
// holds no binary frame.
func EIO3Frames(frames []Frame) []Frame {
	binary := false
	for _, f := range frames {
		binary = binary || f.Binary
	}
	if !binary {
		return frames
	}
	out := make([]Frame, len(frames))
	for i, f := range frames {
		if f.Binary {
			d := make([]byte, 1+len(f.Data))
			d[0] = Message - '0'
			copy(d[1:], f.Data)
			f.Data = d
		}
		out[i] = f
	}
	return out
}

// base64Frame returns the text form of a revision 3 binary frame for a
// client that asked for base64 (b64=1): "b", the type digit, the data in
// base64.
func base64Frame(f Frame) Frame {
	if !f.Binary || len(f.Data) == 0 {
		return f
	}
	b := make([]byte, 0, 2+base64.StdEncoding.EncodedLen(len(f.Data)-1))
	b = append(b, 'b', '0'+f.Data[0])
	b = base64.StdEncoding.AppendEncode(b, f.Data[1:])
	return Frame{Data: b, NoCompress: f.NoCompress}
}

// utf16Len returns the length of the UTF-8 text s in UTF-16 code units, the
// length JavaScript strings have and revision 3 text payloads count in.
// Each byte of an invalid sequence counts as one replacement character.
func utf16Len(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}

// utf16Prefix returns how many bytes of s hold its first n UTF-16 code
// units, or -1 when s is shorter or n ends inside a surrogate pair.
func utf16Prefix(s []byte, n int) int {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return -1
		}
		c := s[i]
		if c < utf8.RuneSelf {
			n--
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r >= 0x10000 {
			if n < 2 {
				return -1
			}
			n -= 2
		} else {
			n--
		}
		i += size
	}
	return i
}

// AppendPayload3 appends frames to b as a revision 3 polling payload and
// reports whether it is binary (application/octet-stream). With binary
// allowed (no b64) and a binary frame among them, every packet is a byte
// 0 (text) or 1 (binary), its length in decimal digits as bytes, 255 and
// the packet; otherwise the payload is text, each packet preceded by its
// length in UTF-16 code units and ":", binary frames in base64 ("b4...").
func AppendPayload3(b []byte, frames []Frame, b64 bool) ([]byte, bool) {
	hasBinary := false
	for _, f := range frames {
		hasBinary = hasBinary || f.Binary
	}
	if hasBinary && !b64 {
		for _, f := range frames {
			kind := byte(0)
			if f.Binary {
				kind = 1
			}
			b = append(b, kind)
			start := len(b)
			b = strconv.AppendInt(b, int64(len(f.Data)), 10)
			for i := start; i < len(b); i++ {
				b[i] -= '0'
			}
			b = append(b, 0xff)
			b = append(b, f.Data...)
		}
		return b, true
	}
	for _, f := range frames {
		if f.Binary {
			f = base64Frame(f)
		}
		b = strconv.AppendInt(b, int64(utf16Len(f.Data)), 10)
		b = append(b, ':')
		b = append(b, f.Data...)
	}
	return b, false
}

// errPayload3 is the decoding error of a malformed revision 3 payload.
var errPayload3 = errors.New("engine.io: malformed payload")

// DecodePacket3 decodes one revision 3 text packet: a type digit and data,
// or "b", the type digit and a base64 binary message.
func DecodePacket3(s []byte) (Packet, error) {
	if len(s) > 0 && s[0] == 'b' {
		if len(s) < 2 || s[1] != Message {
			return Packet{}, errParse
		}
		dst := make([]byte, 0, base64.StdEncoding.DecodedLen(len(s)-2))
		data, err := base64.StdEncoding.AppendDecode(dst, s[2:])
		if err != nil {
			return Packet{}, errParse
		}
		return Packet{Type: Message, Data: data, Binary: true}, nil
	}
	return DecodePacket(s)
}

// decodeBinary3 decodes a revision 3 binary websocket message or binary
// payload packet: the type byte, then the data. Only messages are binary.
func decodeBinary3(s []byte) (Packet, error) {
	if len(s) == 0 || s[0] != Message-'0' {
		return Packet{}, errParse
	}
	return Packet{Type: Message, Data: s[1:], Binary: true}, nil
}

// maxLengthDigits bounds the length field of a payload's packet; the
// official parser gives up after 310 digits, the length of Number.MAX_VALUE.
const maxLengthDigits = 20

// DecodePayload3 decodes a revision 3 polling payload, text or binary
// (application/octet-stream), calling fn for each packet in order. It
// stops at the first malformed packet and returns an error: the packets
// before it have been handled. An empty text payload is malformed, and so
// is one that is not UTF-8.
func DecodePayload3(body []byte, binary bool, fn func(Packet)) error {
	if binary {
		return decodeBinaryPayload3(body, fn)
	}
	if len(body) == 0 || !utf8.Valid(body) {
		// Lengths count UTF-16 code units of the text: text that is not
		// UTF-8 has none to count (Node would count replacement
		// characters).
		return errPayload3
	}
	for len(body) > 0 {
		n, i := 0, 0
		for ; i < len(body) && body[i] != ':'; i++ {
			c := body[i]
			if c < '0' || c > '9' || i >= maxLengthDigits {
				return errPayload3
			}
			n = n*10 + int(c-'0')
		}
		if i == 0 || i == len(body) {
			return errPayload3
		}
		body = body[i+1:]
		size := utf16Prefix(body, n)
		if size < 0 {
			return errPayload3
		}
		msg := body[:size]
		body = body[size:]
		if n == 0 {
			continue
		}
		p, err := DecodePacket3(msg)
		if err != nil {
			return err
		}
		fn(p)
	}
	return nil
}

func decodeBinaryPayload3(body []byte, fn func(Packet)) error {
	for len(body) > 0 {
		text := body[0] == 0
		n, i := 0, 1
		for ; i < len(body) && body[i] != 0xff; i++ {
			c := body[i]
			if c > 9 || i > maxLengthDigits {
				return errPayload3
			}
			n = n*10 + int(c)
		}
		if i == 1 || i == len(body) || n > len(body)-i-1 {
			return errPayload3
		}
		msg := body[i+1 : i+1+n]
		body = body[i+1+n:]
		var p Packet
		var err error
		if text {
			if !utf8.Valid(msg) {
				return errParse
			}
			p, err = DecodePacket3(msg)
		} else {
			p, err = decodeBinary3(msg)
		}
		if err != nil {
			return err
		}
		fn(p)
	}
	return nil
}

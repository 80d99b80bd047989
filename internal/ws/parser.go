package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// sink receives what a parser finds, in order. An error stops the parser.
type sink interface {
	// message gets a whole data message; data is the receiver's to keep.
	message(binary bool, data []byte) error
	// control gets a control frame; payload is only valid during the call.
	control(op byte, payload []byte) error
}

// parser turns the bytes a client sends into messages and control frames.
// It is fed whatever arrives, split anywhere, and keeps the state in
// between: a partial header, the frame being read, the message being
// assembled from fragments.
type parser struct {
	maxSize int64 // bytes of a data message, after decompression
	deflate bool  // permessage-deflate was negotiated

	hdr    [maxHeaderLen]byte
	hdrLen int  // bytes of hdr received
	inBody bool // header complete, reading the payload

	// the frame being read
	opcode byte
	fin    bool
	key    [4]byte
	keyPos int
	left   int64 // payload bytes still to come

	// the data message being assembled
	msgOp         byte // opText or opBinary, 0 between messages
	msgCompressed bool
	msg           []byte

	ctrl    [maxControlLen]byte
	ctrlLen int
}

// preallocLimit caps the buffer reserved up front for a message whose
// header announces a large payload: the rest is allocated as it arrives.
const preallocLimit = 64 << 10

// feed consumes all of b and reports complete messages and control frames
// to s.
func (p *parser) feed(b []byte, s sink) error {
	for len(b) > 0 {
		if !p.inBody {
			n := copy(p.hdr[p.hdrLen:headerLen(p.hdr[:p.hdrLen])], b)
			p.hdrLen += n
			b = b[n:]
			if p.hdrLen < headerLen(p.hdr[:p.hdrLen]) {
				continue
			}
			if err := p.startFrame(); err != nil {
				return err
			}
			if p.left > 0 {
				continue
			}
		} else {
			n := int(min(p.left, int64(len(b))))
			p.body(b[:n])
			b = b[n:]
			p.left -= int64(n)
			if p.left > 0 {
				continue
			}
		}
		if err := p.endFrame(s); err != nil {
			return err
		}
	}
	return nil
}

// headerLen is the length of the frame header that starts with h, as far as
// h tells: 2 until the second byte is known.
func headerLen(h []byte) int {
	if len(h) < 2 {
		return 2
	}
	n := 2
	switch h[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if h[1]&maskBit != 0 {
		n += 4
	}
	return n
}

// startFrame checks the complete header in p.hdr and prepares for the
// payload.
func (p *parser) startFrame() error {
	h := p.hdr[:p.hdrLen]
	p.hdrLen = 0
	p.fin = h[0]&finBit != 0
	p.opcode = h[0] & 0x0f
	rsv := h[0] & 0x70
	if h[1]&maskBit == 0 {
		return protocolError(StatusProtocolError, "client frame is not masked")
	}
	var length uint64
	switch l := h[1] & 0x7f; l {
	case 126:
		length = uint64(binary.BigEndian.Uint16(h[2:]))
	case 127:
		length = binary.BigEndian.Uint64(h[2:])
		if length>>63 != 0 {
			return protocolError(StatusProtocolError, "payload length has the high bit set")
		}
	default:
		length = uint64(l)
	}
	copy(p.key[:], h[len(h)-4:])
	p.keyPos = 0

	switch p.opcode {
	case opClose, opPing, opPong:
		if rsv != 0 {
			return protocolError(StatusProtocolError, "reserved bits set on a control frame")
		}
		if !p.fin {
			return protocolError(StatusProtocolError, "fragmented control frame")
		}
		if length > maxControlLen {
			return protocolError(StatusProtocolError, "control frame of %d bytes", length)
		}
	case opText, opBinary:
		if p.msgOp != 0 {
			return protocolError(StatusProtocolError, "new message before the previous one ended")
		}
		if rsv&^rsv1Bit != 0 || rsv == rsv1Bit && !p.deflate {
			return protocolError(StatusProtocolError, "reserved bits set")
		}
		p.msgOp = p.opcode
		p.msgCompressed = rsv == rsv1Bit
	case opContinuation:
		if p.msgOp == 0 {
			return protocolError(StatusProtocolError, "continuation frame outside a message")
		}
		if rsv != 0 {
			return protocolError(StatusProtocolError, "reserved bits set on a continuation frame")
		}
	default:
		return protocolError(StatusProtocolError, "unknown opcode %#x", p.opcode)
	}
	if p.opcode < opClose {
		if length > uint64(p.maxSize)-uint64(len(p.msg)) {
			return protocolError(StatusMessageTooBig, "message over %d bytes", p.maxSize)
		}
		if p.msg == nil {
			p.msg = make([]byte, 0, min(length, preallocLimit))
		}
	}
	p.left = int64(length)
	p.inBody = true
	return nil
}

// body takes the next part of the current frame's payload.
func (p *parser) body(b []byte) {
	if p.opcode >= opClose {
		n := copy(p.ctrl[p.ctrlLen:], b)
		p.keyPos = mask(p.key, p.keyPos, p.ctrl[p.ctrlLen:p.ctrlLen+n])
		p.ctrlLen += n
		return
	}
	start := len(p.msg)
	p.msg = append(p.msg, b...)
	p.keyPos = mask(p.key, p.keyPos, p.msg[start:])
}

// endFrame finishes the current frame: a control frame or the last
// fragment of a message goes to s.
func (p *parser) endFrame(s sink) error {
	p.inBody = false
	if p.opcode >= opClose {
		payload := p.ctrl[:p.ctrlLen]
		p.ctrlLen = 0
		return s.control(p.opcode, payload)
	}
	if !p.fin {
		return nil
	}
	data, binary, compressed := p.msg, p.msgOp == opBinary, p.msgCompressed
	p.msg, p.msgOp, p.msgCompressed = nil, 0, false
	if compressed {
		var err error
		if data, err = inflate(data, p.maxSize); err != nil {
			return err
		}
	}
	if !binary && !utf8.Valid(data) {
		return protocolError(StatusInvalidData, "text message is not valid UTF-8")
	}
	if data == nil {
		data = []byte{}
	}
	return s.message(binary, data)
}

// parseClose reads the payload of a close frame.
func parseClose(payload []byte) (*CloseError, error) {
	switch {
	case len(payload) == 0:
		return &CloseError{Code: StatusNoStatus}, nil
	case len(payload) == 1:
		return nil, protocolError(StatusProtocolError, "close frame of 1 byte")
	}
	code := int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return nil, protocolError(StatusProtocolError, "invalid close code %d", code)
	}
	reason := payload[2:]
	if !utf8.Valid(reason) {
		return nil, protocolError(StatusInvalidData, "close reason is not valid UTF-8")
	}
	return &CloseError{Code: code, Reason: string(reason)}, nil
}

// validCloseCode reports whether a peer may send code: 1000-1003 and
// 1007-1011 (RFC 6455 §7.4.1), 1012-1014 (service restart, try again later,
// bad gateway; registered since in the IANA WebSocket close code registry),
// or 3000-4999 (libraries, frameworks and applications, §7.4.2). 1004 is
// reserved, and 1005, 1006 and 1015 must never be sent in a close frame.
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

package ws

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// Frame flags for the test helpers, to be ORed with an opcode.
const (
	fin  = finBit
	rsv1 = rsv1Bit
	rsv2 = 0x20
	rsv3 = 0x10
)

// testKey masks the frames built by the helpers. Its bytes differ from one
// another, so that a mask applied from the wrong key offset shows.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame builds a masked frame as a client sends it: first is the first
// header byte (FIN, RSV and opcode), the length takes the shortest encoding.
func clientFrame(first byte, payload []byte) []byte {
	b := appendLength(nil, first, maskBit, len(payload))
	b = append(b, testKey[:]...)
	for i, c := range payload {
		b = append(b, c^testKey[i&3])
	}
	return b
}

// unmaskedFrame builds a frame without a mask, which a client must not send.
func unmaskedFrame(first byte, payload []byte) []byte {
	return append(appendLength(nil, first, 0, len(payload)), payload...)
}

// appendLength appends the first two header bytes and the extended length.
func appendLength(b []byte, first, maskFlag byte, n int) []byte {
	switch {
	case n <= 125:
		return append(b, first, maskFlag|byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, first, maskFlag|126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, first, maskFlag|127), uint64(n))
	}
}

// closeFrame builds a masked close frame with a code and a reason.
func closeFrame(code int, reason string) []byte {
	return clientFrame(fin|opClose, closeBody(code, reason))
}

func closeBody(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// compress compresses a message as permessage-deflate puts it on the wire:
// one sync-flushed stream with its 4-byte tail removed.
func compress(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !bytes.HasSuffix(b, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flushed deflate stream does not end with the sync marker: % x", b[len(b)-4:])
	}
	return b[:len(b)-4]
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// event is something a parser reported to the recorder.
type event struct {
	kind string // "text", "binary", or the name of a control opcode
	data string
}

func (e event) String() string { return fmt.Sprintf("%s(%d bytes)", e.kind, len(e.data)) }

func text(s string) event   { return event{"text", s} }
func bin(s string) event    { return event{"binary", s} }
func ping(s string) event   { return event{"ping", s} }
func pong(s string) event   { return event{"pong", s} }
func closed(s string) event { return event{"close", s} }

// recorder is a sink that records what it gets. Like a serving Conn it
// stops the parser at a close frame, with the peer's *CloseError or the
// *ProtocolError of a malformed close payload.
type recorder struct {
	events []event
	kept   [][]byte // message data as handed over, compared at the end
}

func (r *recorder) message(binary bool, data []byte) error {
	kind := "text"
	if binary {
		kind = "binary"
	}
	if data == nil {
		return fmt.Errorf("message data is nil")
	}
	r.events = append(r.events, event{kind, string(data)})
	r.kept = append(r.kept, data)
	return nil
}

func (r *recorder) control(op byte, payload []byte) error {
	kind := map[byte]string{opPing: "ping", opPong: "pong", opClose: "close"}[op]
	if kind == "" {
		return fmt.Errorf("control frame with opcode %#x", op)
	}
	r.events = append(r.events, event{kind, string(payload)})
	if op != opClose {
		return nil
	}
	ce, err := parseClose(payload)
	if err != nil {
		return err
	}
	return ce
}

// errKey describes an error that stopped a parser, so that two runs can be
// compared: "" for none.
func errKey(err error) string {
	var pe *ProtocolError
	var ce *CloseError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &pe):
		return fmt.Sprintf("protocol error %d", pe.Code)
	case errors.As(err, &ce):
		return fmt.Sprintf("closed %d %q", ce.Code, ce.Reason)
	}
	return "other: " + err.Error()
}

func protoErr(code int) string            { return fmt.Sprintf("protocol error %d", code) }
func peerClose(code int, r string) string { return fmt.Sprintf("closed %d %q", code, r) }

// parseChunks feeds chunks to a new parser until one fails and returns
// what was recorded and the error.
func parseChunks(t testing.TB, maxSize int64, deflate bool, chunks [][]byte) ([]event, string) {
	t.Helper()
	p := parser{maxSize: maxSize, deflate: deflate}
	var r recorder
	var err error
	for _, c := range chunks {
		if err = p.feed(c, &r); err != nil {
			break
		}
	}
	// Data handed to the sink is the sink's to keep: later messages must
	// not have overwritten it.
	j := 0
	for _, e := range r.events {
		if e.kind == "text" || e.kind == "binary" {
			if string(r.kept[j]) != e.data {
				t.Errorf("message %d changed after it was delivered", j)
			}
			j++
		}
	}
	return r.events, errKey(err)
}

// splits returns ways to cut b into chunks: whole, one byte at a time,
// and random cuts.
func splits(b []byte, seed uint64) map[string][][]byte {
	out := map[string][][]byte{
		"whole":    {b},
		"bytewise": {},
	}
	for i := range b {
		out["bytewise"] = append(out["bytewise"], b[i:i+1])
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for n := range 4 {
		var chunks [][]byte
		for rest := b; len(rest) > 0; {
			k := 1 + rng.IntN(min(len(rest), 1+rng.IntN(64)))
			if rng.IntN(8) == 0 {
				k = len(rest) // sometimes a long tail
			}
			chunks = append(chunks, rest[:k])
			rest = rest[k:]
		}
		out[fmt.Sprintf("random%d", n)] = chunks
	}
	return out
}

func TestParser(t *testing.T) {
	const defaultMax = 1 << 20
	big126 := strings.Repeat("x", 200)
	big127 := strings.Repeat("0123456789abcdef", 70000/16) // 70,000 bytes
	maxCtrl := strings.Repeat("c", maxControlLen)
	hello := []byte("hello")
	longText := strings.Repeat("permessage-deflate squeezes repeated text. ", 100)

	tests := []struct {
		name    string
		maxSize int64 // defaultMax when 0
		deflate bool
		input   []byte
		want    []event
		wantErr string
	}{
		{
			name:  "text",
			input: clientFrame(fin|opText, hello),
			want:  []event{text("hello")},
		},
		{
			name:  "binary",
			input: clientFrame(fin|opBinary, []byte{0, 1, 0xfe, 0xff}),
			want:  []event{bin("\x00\x01\xfe\xff")},
		},
		{
			name:  "empty text",
			input: clientFrame(fin|opText, nil),
			want:  []event{text("")},
		},
		{
			name:  "empty binary",
			input: clientFrame(fin|opBinary, nil),
			want:  []event{bin("")},
		},
		{
			name:  "125 bytes, 7-bit length",
			input: clientFrame(fin|opBinary, []byte(big126[:125])),
			want:  []event{bin(big126[:125])},
		},
		{
			name:  "126 bytes, 16-bit length",
			input: clientFrame(fin|opBinary, []byte(big126[:126])),
			want:  []event{bin(big126[:126])},
		},
		{
			name:  "200 bytes, 16-bit length",
			input: clientFrame(fin|opText, []byte(big126)),
			want:  []event{text(big126)},
		},
		{
			name:  "65535 bytes, 16-bit length",
			input: clientFrame(fin|opBinary, []byte(big127[:65535])),
			want:  []event{bin(big127[:65535])},
		},
		{
			name:  "65536 bytes, 64-bit length",
			input: clientFrame(fin|opBinary, []byte(big127[:65536])),
			want:  []event{bin(big127[:65536])},
		},
		{
			name:  "70000 bytes, 64-bit length",
			input: clientFrame(fin|opText, []byte(big127)),
			want:  []event{text(big127)},
		},
		{
			name: "64-bit length for a short payload",
			// Not the shortest encoding, but the length is right.
			input: concat([]byte{fin | opText, maskBit | 127, 0, 0, 0, 0, 0, 0, 0, 5}, testKey[:], clientFrame(fin|opText, hello)[6:]),
			want:  []event{text("hello")},
		},
		{
			name:  "messages back to back",
			input: concat(clientFrame(fin|opText, []byte("one")), clientFrame(fin|opBinary, []byte("two")), clientFrame(fin|opText, []byte("three"))),
			want:  []event{text("one"), bin("two"), text("three")},
		},
		{
			name: "fragments with a ping and a pong between them",
			input: concat(
				clientFrame(opText, []byte("Hel")),
				clientFrame(fin|opPing, []byte("are you there")),
				clientFrame(opContinuation, []byte("lo, ")),
				clientFrame(fin|opPong, nil),
				clientFrame(fin|opContinuation, []byte("world")),
				clientFrame(fin|opText, []byte("next")),
			),
			want: []event{ping("are you there"), pong(""), text("Hello, world"), text("next")},
		},
		{
			name: "fragments, some empty",
			input: concat(
				clientFrame(opBinary, nil),
				clientFrame(opContinuation, []byte("ab")),
				clientFrame(opContinuation, nil),
				clientFrame(fin|opContinuation, nil),
			),
			want: []event{bin("ab")},
		},
		{
			name: "UTF-8 sequence completed by the next fragment",
			input: concat(
				clientFrame(opText, []byte("caf\xc3")),
				clientFrame(fin|opContinuation, []byte("\xa9 \xe2\x82\xac")),
			),
			want: []event{text("café €")},
		},
		{
			name:  "ping of 125 bytes",
			input: clientFrame(fin|opPing, []byte(maxCtrl)),
			want:  []event{ping(maxCtrl)},
		},
		{
			name:  "invalid UTF-8 in a binary message",
			input: clientFrame(fin|opBinary, []byte{0xff, 0xc0}),
			want:  []event{bin("\xff\xc0")},
		},

		// Errors.
		{
			name:    "unmasked frame",
			input:   concat(clientFrame(fin|opText, []byte("ok")), unmaskedFrame(fin|opText, hello)),
			want:    []event{text("ok")},
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "unmasked ping",
			input:   unmaskedFrame(fin|opPing, nil),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV1 without deflate",
			input:   clientFrame(fin|rsv1|opText, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV2",
			input:   clientFrame(fin|rsv2|opBinary, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV3",
			input:   clientFrame(fin|rsv3|opBinary, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV2 with deflate",
			deflate: true,
			input:   clientFrame(fin|rsv2|opBinary, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV1 on a ping with deflate",
			deflate: true,
			input:   clientFrame(fin|rsv1|opPing, nil),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "opcode 3",
			input:   clientFrame(fin|0x3, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "opcode 7",
			input:   clientFrame(fin|0x7, nil),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "opcode 0xb",
			input:   clientFrame(fin|0xb, nil),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "opcode 0xf",
			input:   clientFrame(fin|0xf, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "fragmented ping",
			input:   clientFrame(opPing, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "fragmented close",
			input:   clientFrame(opClose, closeBody(1000, "")),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "ping of 126 bytes",
			input:   clientFrame(fin|opPing, []byte(maxCtrl+"c")),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "pong of 126 bytes inside a message",
			input:   concat(clientFrame(opText, hello), clientFrame(fin|opPong, []byte(maxCtrl+"c"))),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "continuation without a message",
			input:   clientFrame(fin|opContinuation, hello),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "continuation after the last fragment",
			input:   concat(clientFrame(opText, hello), clientFrame(fin|opContinuation, hello), clientFrame(fin|opContinuation, hello)),
			want:    []event{text("hellohello")},
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "text frame in the middle of a message",
			input:   concat(clientFrame(opText, hello), clientFrame(fin|opText, hello)),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "binary frame in the middle of a message",
			input:   concat(clientFrame(opBinary, hello), clientFrame(opContinuation, hello), clientFrame(fin|opBinary, hello)),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "RSV1 on a continuation frame",
			deflate: true,
			input:   concat(clientFrame(opText, hello), clientFrame(fin|rsv1|opContinuation, hello)),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "64-bit length with the high bit set",
			input:   concat([]byte{fin | opBinary, maskBit | 127, 0x80, 0, 0, 0, 0, 0, 0, 1}, testKey[:]),
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "message of maxSize",
			maxSize: 10,
			input:   clientFrame(fin|opBinary, []byte("0123456789")),
			want:    []event{bin("0123456789")},
		},
		{
			name:    "message over maxSize",
			maxSize: 10,
			input:   concat(clientFrame(fin|opText, []byte("fine")), clientFrame(fin|opBinary, []byte("0123456789a"))),
			want:    []event{text("fine")},
			wantErr: protoErr(StatusMessageTooBig),
		},
		{
			name:    "fragmented message of maxSize",
			maxSize: 10,
			input:   concat(clientFrame(opText, []byte("01234")), clientFrame(fin|opContinuation, []byte("56789"))),
			want:    []event{text("0123456789")},
		},
		{
			name:    "fragmented message over maxSize",
			maxSize: 10,
			input:   concat(clientFrame(opText, []byte("012345")), clientFrame(opContinuation, []byte("6789")), clientFrame(fin|opContinuation, []byte("a"))),
			wantErr: protoErr(StatusMessageTooBig),
		},
		{
			name:    "huge announced length",
			maxSize: 10,
			input:   concat([]byte{fin | opBinary, maskBit | 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, testKey[:]),
			wantErr: protoErr(StatusMessageTooBig),
		},
		{
			name:    "control frames do not count towards maxSize",
			maxSize: 4,
			input:   concat(clientFrame(opText, []byte("ab")), clientFrame(fin|opPing, []byte("a ping longer than the limit")), clientFrame(fin|opContinuation, []byte("cd"))),
			want:    []event{ping("a ping longer than the limit"), text("abcd")},
		},
		{
			name:    "invalid UTF-8 text",
			input:   concat(clientFrame(fin|opText, []byte("ok")), clientFrame(fin|opText, []byte("bad \xff byte"))),
			want:    []event{text("ok")},
			wantErr: protoErr(StatusInvalidData),
		},
		{
			name:    "overlong UTF-8 encoding",
			input:   clientFrame(fin|opText, []byte{0xc0, 0xaf}),
			wantErr: protoErr(StatusInvalidData),
		},
		{
			name:    "UTF-16 surrogate in text",
			input:   clientFrame(fin|opText, []byte{0xed, 0xa0, 0x80}),
			wantErr: protoErr(StatusInvalidData),
		},
		{
			name:    "text ending in the middle of a UTF-8 sequence",
			input:   concat(clientFrame(opText, []byte("abc")), clientFrame(fin|opContinuation, []byte{0xe2, 0x82})),
			wantErr: protoErr(StatusInvalidData),
		},

		// Close frames.
		{
			name:    "close without payload",
			input:   clientFrame(fin|opClose, nil),
			want:    []event{closed("")},
			wantErr: peerClose(StatusNoStatus, ""),
		},
		{
			name:    "close with a code",
			input:   closeFrame(StatusNormalClosure, ""),
			want:    []event{closed("\x03\xe8")},
			wantErr: peerClose(StatusNormalClosure, ""),
		},
		{
			name:    "close with a code and a reason",
			input:   concat(clientFrame(fin|opText, hello), closeFrame(StatusGoingAway, "bye ✓"), clientFrame(fin|opText, []byte("after close"))),
			want:    []event{text("hello"), closed("\x03\xe9bye ✓")},
			wantErr: peerClose(StatusGoingAway, "bye ✓"),
		},
		{
			name:    "close between fragments",
			input:   concat(clientFrame(opText, hello), closeFrame(4000, "")),
			want:    []event{closed("\x0f\xa0")},
			wantErr: peerClose(4000, ""),
		},
		{
			name:    "close with 1 byte",
			input:   clientFrame(fin|opClose, []byte{0x03}),
			want:    []event{closed("\x03")},
			wantErr: protoErr(StatusProtocolError),
		},
		{
			name:    "close with a reason that is not UTF-8",
			input:   closeFrame(StatusNormalClosure, "\xffbye"),
			want:    []event{closed("\x03\xe8\xffbye")},
			wantErr: protoErr(StatusInvalidData),
		},

		// permessage-deflate.
		{
			name:    "compressed text",
			deflate: true,
			input:   clientFrame(fin|rsv1|opText, compress(t, []byte(longText))),
			want:    []event{text(longText)},
		},
		{
			name:    "compressed message in fragments",
			deflate: true,
			input: func() []byte {
				z := compress(t, []byte(longText))
				return concat(
					clientFrame(rsv1|opBinary, z[:3]),
					clientFrame(fin|opPing, nil),
					clientFrame(opContinuation, z[3:10]),
					clientFrame(fin|opContinuation, z[10:]),
				)
			}(),
			want: []event{ping(""), bin(longText)},
		},
		{
			name:    "compressed and plain messages mixed",
			deflate: true,
			input:   concat(clientFrame(fin|opText, hello), clientFrame(fin|rsv1|opText, compress(t, hello)), clientFrame(fin|rsv1|opBinary, nil)),
			want:    []event{text("hello"), text("hello"), bin("")},
		},
		{
			name:    "compressed message over maxSize once inflated",
			deflate: true,
			maxSize: 1000,
			input:   clientFrame(fin|rsv1|opText, compress(t, []byte(strings.Repeat("a", 1001)))),
			wantErr: protoErr(StatusMessageTooBig),
		},
		{
			name:    "compressed message of maxSize once inflated",
			deflate: true,
			maxSize: 1000,
			input:   clientFrame(fin|rsv1|opText, compress(t, []byte(strings.Repeat("a", 1000)))),
			want:    []event{text(strings.Repeat("a", 1000))},
		},
		{
			name:    "corrupt compressed data",
			deflate: true,
			input:   clientFrame(fin|rsv1|opBinary, []byte{0xff, 0xff, 0xff, 0xff}),
			wantErr: protoErr(StatusInvalidData),
		},
		{
			name:    "compressed text that is not UTF-8",
			deflate: true,
			input:   clientFrame(fin|rsv1|opText, compress(t, []byte("\xff\xfe"))),
			wantErr: protoErr(StatusInvalidData),
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxSize := tt.maxSize
			if maxSize == 0 {
				maxSize = defaultMax
			}
			input := bytes.Clone(tt.input)
			for how, chunks := range splits(input, uint64(i)) {
				events, err := parseChunks(t, maxSize, tt.deflate, chunks)
				if !reflect.DeepEqual(events, tt.want) && len(events)+len(tt.want) > 0 {
					t.Errorf("%s: got events %v, want %v", how, events, tt.want)
				}
				if err != tt.wantErr {
					t.Errorf("%s: got error %q, want %q", how, err, tt.wantErr)
				}
			}
			if !bytes.Equal(input, tt.input) {
				t.Error("the parser modified its input")
			}
		})
	}
}

func TestParseClose(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    *CloseError
		wantErr int
	}{
		{"empty", nil, &CloseError{Code: StatusNoStatus}, 0},
		{"1 byte", []byte{0x03}, nil, StatusProtocolError},
		{"1000", closeBody(1000, ""), &CloseError{Code: 1000}, 0},
		{"1001 with reason", closeBody(1001, "going"), &CloseError{Code: 1001, Reason: "going"}, 0},
		{"1003", closeBody(1003, ""), &CloseError{Code: 1003}, 0},
		{"1007", closeBody(1007, ""), &CloseError{Code: 1007}, 0},
		{"1011", closeBody(1011, "oops"), &CloseError{Code: 1011, Reason: "oops"}, 0},
		{"1012", closeBody(1012, "restarting"), &CloseError{Code: 1012, Reason: "restarting"}, 0},
		{"1013", closeBody(1013, ""), &CloseError{Code: 1013}, 0},
		{"1014", closeBody(1014, "bad gateway"), &CloseError{Code: 1014, Reason: "bad gateway"}, 0},
		{"3000", closeBody(3000, ""), &CloseError{Code: 3000}, 0},
		{"4999", closeBody(4999, "app"), &CloseError{Code: 4999, Reason: "app"}, 0},
		{"0", closeBody(0, ""), nil, StatusProtocolError},
		{"999", closeBody(999, ""), nil, StatusProtocolError},
		{"1004", closeBody(1004, ""), nil, StatusProtocolError},
		{"1005", closeBody(1005, ""), nil, StatusProtocolError},
		{"1006", closeBody(1006, ""), nil, StatusProtocolError},
		{"1015", closeBody(1015, ""), nil, StatusProtocolError},
		{"1016", closeBody(1016, ""), nil, StatusProtocolError},
		{"2999", closeBody(2999, ""), nil, StatusProtocolError},
		{"5000", closeBody(5000, ""), nil, StatusProtocolError},
		{"65535", closeBody(65535, ""), nil, StatusProtocolError},
		{"reason not UTF-8", closeBody(1000, "\xc3("), nil, StatusInvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce, err := parseClose(tt.payload)
			if tt.wantErr != 0 {
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != tt.wantErr {
					t.Fatalf("parseClose(% x) = %v, %v; want a protocol error %d", tt.payload, ce, err, tt.wantErr)
				}
				return
			}
			if err != nil || *ce != *tt.want {
				t.Fatalf("parseClose(% x) = %v, %v; want %v", tt.payload, ce, err, tt.want)
			}
		})
	}
}

func TestMask(t *testing.T) {
	key := [4]byte{1, 2, 4, 8}
	for n := range 40 {
		for pos := range 4 {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(i * 7)
			}
			want := bytes.Clone(b)
			for i := range want {
				want[i] ^= key[(pos+i)&3]
			}
			next := mask(key, pos, b)
			if !bytes.Equal(b, want) {
				t.Errorf("mask of %d bytes from key offset %d: got % x, want % x", n, pos, b, want)
			}
			if next != (pos+n)&3 {
				t.Errorf("mask of %d bytes from key offset %d returned offset %d, want %d", n, pos, next, (pos+n)&3)
			}
		}
	}
}

func TestAppendHeader(t *testing.T) {
	tests := []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	for _, tt := range tests {
		if got := appendHeader([]byte("x"), fin|opText, tt.n); !bytes.Equal(got, append([]byte("x"), tt.want...)) {
			t.Errorf("appendHeader for %d bytes = % x, want x + % x", tt.n, got, tt.want)
		}
	}
}

func TestNegotiateDeflate(t *testing.T) {
	const accepted = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	tests := []struct {
		name   string
		offers []string
		want   string
	}{
		{"no offer", nil, ""},
		{"plain", []string{"permessage-deflate"}, accepted},
		{"no context takeover", []string{"permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, accepted},
		{"client window bits", []string{"permessage-deflate; client_max_window_bits"}, accepted},
		{"client window bits with a value", []string{"permessage-deflate; client_max_window_bits=10"}, accepted},
		{"server window bits", []string{"permessage-deflate; server_max_window_bits=10"}, ""},
		{"unknown parameter", []string{"permessage-deflate; colour=blue"}, ""},
		{"other extension", []string{"x-webkit-deflate-frame"}, ""},
		{"second offer acceptable", []string{"permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits"}, accepted},
		{"second header line", []string{"foo", "permessage-deflate"}, accepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for _, o := range tt.offers {
				h.Add("Sec-WebSocket-Extensions", o)
			}
			if got := negotiateDeflate(h); got != tt.want {
				t.Errorf("negotiateDeflate(%q) = %q, want %q", tt.offers, got, tt.want)
			}
		})
	}
}

func TestDeflateRoundTrip(t *testing.T) {
	for _, data := range [][]byte{
		[]byte(strings.Repeat("abc", 1000)),
		bytes.Repeat([]byte{0}, 100000),
		func() []byte { // incompressible
			b := make([]byte, 5000)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			return b
		}(),
	} {
		z := deflate([]byte("prefix"), data)
		if !bytes.HasPrefix(z, []byte("prefix")) {
			t.Fatalf("deflate did not append to dst")
		}
		got, err := inflate(z[len("prefix"):], int64(len(data)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("inflate(deflate(%d bytes)) = %d bytes, %v", len(data), len(got), err)
		}
		if _, err := inflate(z[len("prefix"):], int64(len(data)-1)); errKey(err) != protoErr(StatusMessageTooBig) {
			t.Fatalf("inflate with a limit one byte short: %v, want a protocol error %d", err, StatusMessageTooBig)
		}
	}
}

func TestAcceptKey(t *testing.T) {
	// The example of RFC 6455 §1.3.
	if got := acceptKey("dGhlIHNhbXBsZSBub25jZQ=="); got != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("acceptKey = %q", got)
	}
}

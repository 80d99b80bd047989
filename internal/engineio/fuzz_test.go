package engineio

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/rallyhq/rally/internal/fuzzseed"
)

// Fuzz targets of the Engine.IO packet codec. Their seeds are the vectors
// of section F of the protocol reference (docs: SOCKETIO.md); each seed is
// added with f.Add and also kept as a file under testdata/fuzz/<target>/ so
// that a plain "go test" runs it. After changing a seed list, rewrite the
// files with
//
//	RALLY_WRITE_FUZZ_SEEDS=1 go test -run 'Fuzz' ./internal/engineio

// addFuzzSeeds adds each named seed to f and checks its corpus file.
func addFuzzSeeds(f *testing.F, seeds []packetSeed) {
	f.Helper()
	for _, s := range seeds {
		fuzzseed.Add(f, s.name, []byte(s.data))
	}
}

type packetSeed struct{ name, data string }

// packetVectors are the engine-level vectors F1–F13 as single packets, and
// the Socket.IO vectors F15–F39 as the Engine.IO messages that carry them.
var packetVectors = []packetSeed{
	{"F1", `0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`},
	{"F2a", "2"},
	{"F2b", "3"},
	{"F3a", "2probe"},
	{"F3b", "3probe"},
	{"F4", "5"},
	{"F5", "6"},
	{"F6", "1"},
	{"F7", "4hello"},
	{"F9-raw", "\x01\x02\x03\x04"},
	{"F10", "bAQIDBA=="},
	{"F11a", ""},
	{"F11b", "x"},
	{"F11c", "7"},
	{"F14", `{"code":1,"message":"Session ID unknown"}`},
	{"F15", `40`},
	{"F16", `40{"token":"123"}`},
	{"F17a", `40/admin,`},
	{"F17b", `40/admin`},
	{"F18", `40/admin,{"token":"123"}`},
	{"F19", `40{"sid":"wZX3oN0bSVIhsaknAAAI"}`},
	{"F20", `40{"sid":"wZX3oN0bSVIhsaknAAAI","pid":"YnpgTDCqE5ktbvdVAAAB"}`},
	{"F21", `40{"pid":"YnpgTDCqE5ktbvdVAAAB","offset":"PzuyzW0.1"}`},
	{"F22", `44{"message":"Not authorized","data":{"code":42}}`},
	{"F23", `44/random,{"message":"Invalid namespace"}`},
	{"F24a", `41`},
	{"F24b", `41/admin,`},
	{"F25", `42["hello",1,{"a":true}]`},
	{"F26", `42/chat,["hello"]`},
	{"F27", `4212["hello"]`},
	{"F28", `42/chat,12["hello"]`},
	{"F29", `43456[1,"2",{"3":[false]}]`},
	{"F30", `437[]`},
	{"F31", `42["message","hi"]`},
	{"F32", `42[1,"numeric event"]`},
	{"F33", `451-["bin",{"_placeholder":true,"num":0}]`},
	{"F33-attachment", "bAQID"},
	{"F34", `452-["n",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`},
	{"F35", `461-/admin,5[{"_placeholder":true,"num":0},"x"]`},
	{"F35-attachment", "b/w=="},
	{"F36", `42["connect"]`},
	{"F37", `47`},
	{"F38", `42["u",null,null]`},
	{"F39", `420["tick"]`},
}

// frameOf encodes p back into the frame it travels as.
func frameOf(p Packet) Frame {
	if p.Binary {
		return Frame{Data: p.Data, Binary: true}
	}
	return Frame{Data: append([]byte{p.Type}, p.Data...)}
}

func equalPacket(a, b Packet) bool {
	return a.Type == b.Type && a.Binary == b.Binary && bytes.Equal(a.Data, b.Data)
}

// FuzzDecodePacket checks DecodePacket against the rules of the protocol:
// no panic; a packet is a type digit 0–6 and data, or "b" and base64; and a
// decoded packet encodes back to a frame that decodes to the same packet.
func FuzzDecodePacket(f *testing.F) {
	addFuzzSeeds(f, packetVectors)

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodePacket(data)
		var want Packet
		wantErr := len(data) == 0
		if !wantErr && data[0] == 'b' {
			b, berr := base64.StdEncoding.DecodeString(string(data[1:]))
			want, wantErr = Packet{Type: Message, Data: b, Binary: true}, berr != nil
		} else if !wantErr {
			want, wantErr = Packet{Type: data[0], Data: data[1:]}, data[0] < '0' || data[0] > '6'
		}
		if (err != nil) != wantErr || err == nil && !equalPacket(p, want) {
			t.Fatalf("DecodePacket(%q) = %+v, %v; want %+v, error %v", data, p, err, want, wantErr)
		}
		if err != nil {
			return
		}

		frame := frameOf(p)
		text := frame.Data
		if frame.Binary {
			text = AppendPayload(nil, []Frame{frame})
		}
		q, err := DecodePacket(text)
		if err != nil || !equalPacket(p, q) {
			t.Fatalf("DecodePacket(%q) = %+v; encoded again as %q, decodes to %+v, %v", data, p, text, q, err)
		}
		if bytes.IndexByte(text, separator) >= 0 {
			return // a text packet holding 0x1e cannot travel in a payload
		}
		var got []Packet
		payload := AppendPayload(nil, []Frame{frame})
		if err := DecodePayload(payload, func(p Packet) { got = append(got, p) }); err != nil ||
			len(got) != 1 || !equalPacket(got[0], p) {
			t.Fatalf("payload %q of %+v decodes to %+v, %v", payload, p, got, err)
		}
	})
}

// FuzzDecodePayload checks DecodePayload: no panic; the packets delivered
// are those before the first bad one, decoded one by one; and the
// delivered packets, encoded again with AppendPayload, decode to the same
// packets.
func FuzzDecodePayload(f *testing.F) {
	seeds := []packetSeed{
		{"F8", "4hello\x1ebAQIDBA==\x1e2"},
		{"F12", "4a\x1e\x1e4b"},
		{"F13", "6\x1e1"},
		{"F33-polling", "451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID"},
		{"F34-polling", "452-[\"n\",{\"a\":[{\"_placeholder\":true,\"num\":0},{\"b\":{\"_placeholder\":true,\"num\":1}}]}]\x1ebAQ==\x1ebAg=="},
		{"F35-polling", "461-/admin,5[{\"_placeholder\":true,\"num\":0},\"x\"]\x1eb/w=="},
		{"E-get", "40{\"sid\":\"M_1BTqj5htD-yR9EAAAA\"}\x1e42[\"welcome\",\"hi\"]"},
		{"trailing-separator", "4a\x1e"},
		{"bad-base64", "4a\x1eb!!\x1e4c"},
	}
	for _, v := range packetVectors {
		seeds = append(seeds, packetSeed{v.name, v.data})
	}
	addFuzzSeeds(f, seeds)

	f.Fuzz(func(t *testing.T, body []byte) {
		var got []Packet
		err := DecodePayload(body, func(p Packet) { got = append(got, p) })

		// The packets before the first bad one, decoded one at a time.
		var want []Packet
		wantErr := false
		if body != nil {
			for _, seg := range bytes.Split(body, []byte{separator}) {
				p, err := DecodePacket(seg)
				if err != nil {
					wantErr = true
					break
				}
				want = append(want, p)
			}
		}
		if (err != nil) != wantErr || len(got) != len(want) {
			t.Fatalf("DecodePayload(%q) = %+v, %v; want %+v, error %v", body, got, err, want, wantErr)
		}
		for i := range want {
			if !equalPacket(got[i], want[i]) {
				t.Fatalf("DecodePayload(%q): packet %d is %+v, want %+v", body, i, got[i], want[i])
			}
		}

		if len(got) == 0 {
			return
		}
		frames := make([]Frame, len(got))
		for i, p := range got {
			frames[i] = frameOf(p)
		}
		again := AppendPayload(nil, frames)
		var back []Packet
		if err := DecodePayload(again, func(p Packet) { back = append(back, p) }); err != nil || len(back) != len(got) {
			t.Fatalf("DecodePayload(%q) = %+v; encoded again as %q, decodes to %+v, %v", body, got, again, back, err)
		}
		for i := range got {
			if !equalPacket(back[i], got[i]) {
				t.Fatalf("DecodePayload(%q): packet %d %+v comes back from %q as %+v", body, i, got[i], again, back[i])
			}
		}
		if !wantErr && !bytes.Contains(body, []byte{separator, 'b'}) && body[0] != 'b' && !bytes.Equal(again, body) {
			t.Fatalf("text-only payload %q encodes again as %q", body, again)
		}
	})
}

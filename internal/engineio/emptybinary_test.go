package engineio

import "testing"

// "b" alone is an empty binary message: its data is a non-nil empty slice,
// in a single packet and in a polling payload.
func TestDecodeEmptyBinary(t *testing.T) {
	p, err := DecodePacket([]byte("b"))
	if err != nil || !p.Binary || p.Type != Message || p.Data == nil || len(p.Data) != 0 {
		t.Fatalf(`DecodePacket("b") = %+v, %v; want an empty non-nil binary message`, p, err)
	}
	var got []Packet
	if err := DecodePayload([]byte("451-[\"x\",{\"_placeholder\":true,\"num\":0}]\x1eb"), func(p Packet) { got = append(got, p) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[1].Binary || got[1].Data == nil || len(got[1].Data) != 0 {
		t.Fatalf("DecodePayload: got %+v, want the text packet and an empty non-nil binary message", got)
	}
	if b := AppendPayload(nil, []Frame{{Data: []byte{}, Binary: true}}); string(b) != "b" {
		t.Fatalf("AppendPayload of an empty binary frame = %q, want %q", b, "b")
	}
}

package msgpack

import (
	"testing"

	"github.com/rallyhq/rally/internal/parser"
)

// The conversions of a small event, each way.
func BenchmarkDecode(b *testing.B) {
	p := &parser.Packet{Type: parser.Event, Namespace: "/", ID: 7,
		Data: []byte(`["echo",{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)}
	data, err := Encode(nil, p)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	p := &parser.Packet{Type: parser.Ack, Namespace: "/", ID: 7,
		Data: []byte(`[{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(nil, p); err != nil {
			b.Fatal(err)
		}
	}
}

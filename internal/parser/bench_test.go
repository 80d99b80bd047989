package parser_test

// Micro benchmarks of Socket.IO packet encoding and decoding:
//
//	go test -run '^$' -bench . -benchmem ./internal/parser

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rallyhq/rally/internal/parser"
)

type benchTick struct {
	T int64  `json:"t"`
	I int    `json:"i"`
	P string `json:"p"`
}

var (
	benchPayload = benchTick{T: 1700000000123456, I: 42, P: strings.Repeat("x", 32)}
	benchEvent   = []byte(`212["echo",{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)
	benchBinary  = []byte(`51-/admin,7["upload","name",{"_placeholder":true,"num":0}]`)
	benchBlob    = bytes.Repeat([]byte{7}, 1024)
)

func BenchmarkDecodeText(b *testing.B) {
	b.Run("event", func(b *testing.B) {
		var d parser.Decoder
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.DecodeText(benchEvent); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary-event", func(b *testing.B) {
		var d parser.Decoder
		b.ReportAllocs()
		for b.Loop() {
			if p, err := d.DecodeText(benchBinary); err != nil || p != nil {
				b.Fatal(p, err)
			}
			if p, err := d.DecodeBinary(benchBlob); err != nil || p == nil {
				b.Fatal(p, err)
			}
		}
	})
}

func BenchmarkAppendText(b *testing.B) {
	p := &parser.Packet{Type: parser.Event, Namespace: "/", ID: parser.NoID, Data: benchEvent[3:]}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = p.AppendText(append(buf[:0], '4'))
	}
}

func BenchmarkMarshalEvent(b *testing.B) {
	b.Run("struct", func(b *testing.B) {
		args := []any{benchPayload}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := parser.MarshalEvent("tick", args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("string+number", func(b *testing.B) {
		args := []any{"hello", 42}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := parser.MarshalEvent("chat", args); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		args := []any{"name", benchBlob}
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := parser.MarshalEvent("upload", args); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSplitArray(b *testing.B) {
	data := benchEvent[3:]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parser.SplitArray(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	raw, _ := json.Marshal(benchPayload)
	b.Run("struct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v benchTick
			if err := parser.Unmarshal(raw, nil, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("any", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v any
			if err := parser.Unmarshal(raw, nil, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("binary", func(b *testing.B) {
		ph := json.RawMessage(`{"_placeholder":true,"num":0}`)
		atts := [][]byte{benchBlob}
		b.ReportAllocs()
		for b.Loop() {
			var v []byte
			if err := parser.Unmarshal(ph, atts, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

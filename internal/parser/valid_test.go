package parser

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	``, ` `, `0`, `-0`, `01`, `-`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1e+9`, `1E-09`, `-1.25e3`, `2a`,
	`"`, `""`, `"a\"b"`, `"\u00e9"`, `"\u00g9"`, `"\x"`, "\"\t\"", "\"\x7f\xff\"", `"\`,
	`true`, `tru`, `truex`, `false`, `null`, `nul`, `nullnull`,
	`[]`, `[ ]`, `[`, `]`, `[1,]`, `[,1]`, `[1 2]`, `[1,2]`, ` [ 1 , [ ] , { } ] `, `[[[]]]`, `[[]`, `[]]`,
	`{}`, `{"a":1}`, `{"a" : [1,{"b":null}] }`, `{"a"}`, `{"a":}`, `{a:1}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`,
	`{"a":1}x`, `[1] [2]`, "[\"a\"]\n", `["echo",{"t":1,"i":2,"p":"xx"}]`,
	strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
	strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000),
}

func TestValidJSONAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := validJSON(data), json.Valid(data); got != want {
			t.Fatalf("validJSON(%.60q) = %v, encoding/json says %v", data, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	payload := []byte(`["echo",{"t":1700000000123456,"i":42,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]`)
	b.Run("rally", func(b *testing.B) {
		for b.Loop() {
			validJSON(payload)
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			json.Valid(payload)
		}
	})
}

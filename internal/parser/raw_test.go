package parser

import (
	"bytes"
	"encoding/json"
	"testing"
)

type rawArg struct {
	text json.RawMessage
	atts [][]byte
}

func (r *rawArg) ReceiveRaw(text json.RawMessage, atts [][]byte) { r.text, r.atts = text, atts }
func (r rawArg) SendRaw() (json.RawMessage, [][]byte)            { return r.text, r.atts }

// An argument taken raw keeps its bytes; its placeholders count over its
// own attachments.
func TestUnmarshalRaw(t *testing.T) {
	a, b, c := []byte("a"), []byte("b"), []byte("c")
	cases := []struct {
		name     string
		in       string
		atts     [][]byte
		want     string
		wantAtts [][]byte
	}{
		{"key order and numbers kept", `{"z":1,"a":1.50,"m":"\u00e9"}`, nil, `{"z":1,"a":1.50,"m":"\u00e9"}`, nil},
		{"placeholder renumbered", `{"x":{"_placeholder":true,"num":2}}`, [][]byte{a, b, c}, `{"x":{"_placeholder":true,"num":0}}`, [][]byte{c}},
		{"keys in the other order, spaces", `[ { "num" : 1 , "_placeholder" : true } , {"_placeholder":true,"num":0} ]`, [][]byte{a, b},
			`[ {"_placeholder":true,"num":0} , {"_placeholder":true,"num":1} ]`, [][]byte{b, a}},
		{"the same attachment twice", `[{"_placeholder":true,"num":1},{"_placeholder":true,"num":1}]`, [][]byte{a, b},
			`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]`, [][]byte{b}},
		{"look-alikes left alone", `[{"_placeholder":"yes","num":0},["_placeholder"],{"_placeholder":true,"num":{"n":0}},{"x":{"_placeholder":false,"num":0}}]`,
			[][]byte{a}, `[{"_placeholder":"yes","num":0},["_placeholder"],{"_placeholder":true,"num":{"n":0}},{"x":{"_placeholder":false,"num":0}}]`, nil},
		{"extra keys: replaced whole, as the official parser does", `[{"x":{"y":1},"_placeholder":true,"num":1}]`, [][]byte{a, b},
			`[{"_placeholder":true,"num":0}]`, [][]byte{b}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r rawArg
			if err := Unmarshal(json.RawMessage(tc.in), tc.atts, &r); err != nil {
				t.Fatal(err)
			}
			if string(r.text) != tc.want || len(r.atts) != len(tc.wantAtts) {
				t.Fatalf("got %s %q, want %s %q", r.text, r.atts, tc.want, tc.wantAtts)
			}
			for i := range r.atts {
				if !bytes.Equal(r.atts[i], tc.wantAtts[i]) {
					t.Fatalf("attachment %d: %q, want %q", i, r.atts[i], tc.wantAtts[i])
				}
			}
		})
	}
	var r rawArg
	if err := Unmarshal(json.RawMessage(`{"_placeholder":true,"num":3}`), [][]byte{a}, &r); err == nil {
		t.Fatal("a placeholder beyond the attachments was taken")
	}
}

// Raw arguments sent together get their placeholders numbered over the
// packet, and the rest of their bytes as they were.
func TestMarshalRaw(t *testing.T) {
	a, b := []byte("a"), []byte("b")
	data, atts, err := MarshalEvent("relay", []any{
		rawArg{text: json.RawMessage(`{"z":{"_placeholder":true,"num":0},"a":1.50}`), atts: [][]byte{a}},
		[]byte("go"),
		rawArg{text: json.RawMessage(`[{"_placeholder":true,"num":0}]`), atts: [][]byte{b}},
		rawArg{text: json.RawMessage(`"plain"`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `["relay",{"z":{"_placeholder":true,"num":0},"a":1.50},{"_placeholder":true,"num":1},[{"_placeholder":true,"num":2}],"plain"]`
	if string(data) != want || len(atts) != 3 || string(atts[0]) != "a" || string(atts[1]) != "go" || string(atts[2]) != "b" {
		t.Fatalf("got %s %q, want %s [a go b]", data, atts, want)
	}
}

package parser

import (
	"encoding/json"
	"testing"
)

// An empty non-nil []byte is binary: it travels as a zero-length
// attachment. A nil []byte is JSON null, as encoding/json has it.
func TestMarshalEmptyBinary(t *testing.T) {
	tests := []struct {
		name     string
		marshal  func() (json.RawMessage, [][]byte, error)
		wantJSON string
		wantAtts int
	}{
		{"event, empty", func() (json.RawMessage, [][]byte, error) { return MarshalEvent("x", []any{[]byte{}}) },
			`["x",{"_placeholder":true,"num":0}]`, 1},
		{"event, nil", func() (json.RawMessage, [][]byte, error) { return MarshalEvent("x", []any{[]byte(nil)}) },
			`["x",null]`, 0},
		{"event, nested empty", func() (json.RawMessage, [][]byte, error) {
			return MarshalEvent("x", []any{map[string]any{"b": []byte{}}})
		}, `["x",{"b":{"_placeholder":true,"num":0}}]`, 1},
		{"ack, empty", func() (json.RawMessage, [][]byte, error) { return MarshalAck([]any{[]byte{}}) },
			`[{"_placeholder":true,"num":0}]`, 1},
		{"ack, nil", func() (json.RawMessage, [][]byte, error) { return MarshalAck([]any{[]byte(nil)}) },
			`[null]`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := tt.marshal()
			if err != nil || string(data) != tt.wantJSON || len(atts) != tt.wantAtts {
				t.Fatalf("got %s, %d attachments, %v; want %s, %d attachments", data, len(atts), err, tt.wantJSON, tt.wantAtts)
			}
			for i, a := range atts {
				if a == nil || len(a) != 0 {
					t.Errorf("attachment %d = %#v, want []byte{}", i, a)
				}
			}
		})
	}
}

// A zero-length attachment decodes as a non-nil empty []byte into every
// kind of destination.
func TestUnmarshalEmptyBinary(t *testing.T) {
	var d Decoder
	if p, err := d.DecodeText([]byte(`51-["x",{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":0}}]`)); p != nil || err != nil {
		t.Fatalf("DecodeText: %v, %v", p, err)
	}
	p, err := d.DecodeBinary([]byte{})
	if err != nil || p == nil {
		t.Fatalf("DecodeBinary: %v, %v", p, err)
	}
	elems, err := SplitArray(p.Data)
	if err != nil || len(elems) != 3 {
		t.Fatalf("SplitArray: %q, %v", elems, err)
	}
	empty := func(what string, v any) {
		t.Helper()
		if b, ok := v.([]byte); !ok || b == nil || len(b) != 0 {
			t.Errorf("%s: got %#v, want []byte{}", what, v)
		}
	}

	var b []byte
	if err := Unmarshal(elems[1], p.Attachments, &b); err != nil {
		t.Fatal(err)
	}
	empty("[]byte", b)
	var a any
	if err := Unmarshal(elems[1], p.Attachments, &a); err != nil {
		t.Fatal(err)
	}
	empty("any", a)
	var s struct{ B []byte }
	if err := Unmarshal(elems[2], p.Attachments, &s); err != nil {
		t.Fatal(err)
	}
	empty("struct field", s.B)
	var m map[string]any
	if err := Unmarshal(elems[2], p.Attachments, &m); err != nil {
		t.Fatal(err)
	}
	empty("map value", m["b"])
}

package parser

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Vectors F15–F39 of the protocol reference, without the Engine.IO "4".
func TestDecodeVectors(t *testing.T) {
	tests := []struct {
		name string
		text string
		bins []string
		want Packet
	}{
		{"F15 connect", `0`, nil, Packet{Type: Connect, Namespace: "/", ID: NoID}},
		{"F16 connect auth", `0{"token":"123"}`, nil, Packet{Type: Connect, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"token":"123"}`)}},
		{"F17 connect admin comma", `0/admin,`, nil, Packet{Type: Connect, Namespace: "/admin", ID: NoID}},
		{"F17 connect admin", `0/admin`, nil, Packet{Type: Connect, Namespace: "/admin", ID: NoID}},
		{"F18 connect admin auth", `0/admin,{"token":"123"}`, nil, Packet{Type: Connect, Namespace: "/admin", ID: NoID, Data: json.RawMessage(`{"token":"123"}`)}},
		{"F19 connect reply", `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`, nil, Packet{Type: Connect, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"sid":"wZX3oN0bSVIhsaknAAAI"}`)}},
		{"F20 connect reply pid", `0{"sid":"wZX3oN0bSVIhsaknAAAI","pid":"YnpgTDCqE5ktbvdVAAAB"}`, nil, Packet{Type: Connect, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"sid":"wZX3oN0bSVIhsaknAAAI","pid":"YnpgTDCqE5ktbvdVAAAB"}`)}},
		{"F21 connect recover", `0{"pid":"YnpgTDCqE5ktbvdVAAAB","offset":"PzuyzW0.1"}`, nil, Packet{Type: Connect, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"pid":"YnpgTDCqE5ktbvdVAAAB","offset":"PzuyzW0.1"}`)}},
		{"F22 connect error", `4{"message":"Not authorized","data":{"code":42}}`, nil, Packet{Type: ConnectError, Namespace: "/", ID: NoID, Data: json.RawMessage(`{"message":"Not authorized","data":{"code":42}}`)}},
		{"F23 invalid namespace", `4/random,{"message":"Invalid namespace"}`, nil, Packet{Type: ConnectError, Namespace: "/random", ID: NoID, Data: json.RawMessage(`{"message":"Invalid namespace"}`)}},
		{"F24 disconnect", `1`, nil, Packet{Type: Disconnect, Namespace: "/", ID: NoID}},
		{"F24 disconnect admin", `1/admin,`, nil, Packet{Type: Disconnect, Namespace: "/admin", ID: NoID}},
		{"F25 event", `2["hello",1,{"a":true}]`, nil, Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`["hello",1,{"a":true}]`)}},
		{"F26 event chat", `2/chat,["hello"]`, nil, Packet{Type: Event, Namespace: "/chat", ID: NoID, Data: json.RawMessage(`["hello"]`)}},
		{"F27 event ack", `212["hello"]`, nil, Packet{Type: Event, Namespace: "/", ID: 12, Data: json.RawMessage(`["hello"]`)}},
		{"F28 event chat ack", `2/chat,12["hello"]`, nil, Packet{Type: Event, Namespace: "/chat", ID: 12, Data: json.RawMessage(`["hello"]`)}},
		{"F29 ack", `3456[1,"2",{"3":[false]}]`, nil, Packet{Type: Ack, Namespace: "/", ID: 456, Data: json.RawMessage(`[1,"2",{"3":[false]}]`)}},
		{"F30 empty ack", `37[]`, nil, Packet{Type: Ack, Namespace: "/", ID: 7, Data: json.RawMessage(`[]`)}},
		{"F31 message", `2["message","hi"]`, nil, Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`["message","hi"]`)}},
		{"F32 numeric event", `2[1,"numeric event"]`, nil, Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`[1,"numeric event"]`)}},
		{"F33 binary event", `51-["bin",{"_placeholder":true,"num":0}]`, []string{"\x01\x02\x03"},
			Packet{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: json.RawMessage(`["bin",{"_placeholder":true,"num":0}]`), Attachments: [][]byte{{1, 2, 3}}}},
		{"F34 nested placeholders", `52-["n",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`, []string{"\x01", "\x02"},
			Packet{Type: BinaryEvent, Namespace: "/", ID: NoID, Data: json.RawMessage(`["n",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`), Attachments: [][]byte{{1}, {2}}}},
		{"F35 binary ack", `61-/admin,5[{"_placeholder":true,"num":0},"x"]`, []string{"\xff"},
			Packet{Type: BinaryAck, Namespace: "/admin", ID: 5, Data: json.RawMessage(`[{"_placeholder":true,"num":0},"x"]`), Attachments: [][]byte{{0xff}}}},
		{"F38 undefined as null", `2["u",null,null]`, nil, Packet{Type: Event, Namespace: "/", ID: NoID, Data: json.RawMessage(`["u",null,null]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d Decoder
			p, err := d.DecodeText([]byte(tt.text))
			if err != nil {
				t.Fatalf("DecodeText(%q): %v", tt.text, err)
			}
			for i, b := range tt.bins {
				if p != nil {
					t.Fatalf("packet complete before attachment %d", i)
				}
				if p, err = d.DecodeBinary([]byte(b)); err != nil {
					t.Fatalf("DecodeBinary: %v", err)
				}
			}
			if p == nil {
				t.Fatal("packet incomplete")
			}
			if !reflect.DeepEqual(*p, tt.want) {
				t.Fatalf("got %+v\nwant %+v", *p, tt.want)
			}
			if got := p.String(); got != canonical(tt.text) {
				t.Fatalf("re-encoded as %q, want %q", got, canonical(tt.text))
			}
		})
	}
}

// canonical is the form the encoder writes: the namespace always followed by
// a comma.
func canonical(s string) string {
	if s == "0/admin" {
		return "0/admin,"
	}
	return s
}

// Vectors F36, F37 and the other inputs the official parser refuses.
func TestDecodeInvalid(t *testing.T) {
	tests := []struct {
		text string
		want error
	}{
		{``, ErrUnknownType},
		{`7`, ErrUnknownType},
		{`x`, ErrUnknownType},
		{`2["connect"]`, ErrInvalidPayload},
		{`2["disconnecting"]`, ErrInvalidPayload},
		{`2["newListener"]`, ErrInvalidPayload},
		{`2{}`, ErrInvalidPayload},
		{`2[]`, ErrInvalidPayload},
		{`2[null]`, ErrInvalidPayload},
		{`2[{}]`, ErrInvalidPayload},
		{`2`, ErrInvalidPayload},
		{`2abc["x"]`, ErrInvalidPayload},
		{`2["x"`, ErrInvalidPayload},
		{`0[]`, ErrInvalidPayload},
		{`0null`, ErrInvalidPayload},
		{`0"x"`, ErrInvalidPayload},
		{`1{}`, ErrInvalidPayload},
		{`3[`, ErrInvalidPayload},
		{`3{}`, ErrInvalidPayload},
		{`3["no id"]`, ErrInvalidID},
		{`3null`, ErrInvalidPayload},
		{`4[]`, ErrInvalidPayload},
		{`5`, ErrIllegalAttach},
		{`5-["a"]`, ErrIllegalAttach},
		{`50-["a"]`, ErrIllegalAttach},
		{`5a-["a"]`, ErrIllegalAttach},
		{`51["a"]`, ErrIllegalAttach},
		{`511-["a"]`, ErrTooManyAttach},
		{`599999-["a"]`, ErrIllegalAttach},
		{`29007199254740992["a"]`, ErrInvalidID},
		{`01["a"]`, ErrInvalidPayload},
		{`0/` + strings.Repeat("n", MaxNamespaceLen) + `,`, ErrInvalidNamespace},
		{`2["` + strings.Repeat("e", MaxEventLen+1) + `"]`, ErrInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			var d Decoder
			p, err := d.DecodeText([]byte(tt.text))
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecodeText(%q) = %v, %v; want error %v", tt.text, p, err, tt.want)
			}
		})
	}
}

func TestDecoderAttachmentErrors(t *testing.T) {
	t.Run("text while waiting", func(t *testing.T) {
		var d Decoder
		if _, err := d.DecodeText([]byte(`51-["a",{"_placeholder":true,"num":0}]`)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.DecodeText([]byte(`2["a"]`)); !errors.Is(err, ErrUnexpectedText) {
			t.Fatalf("got %v, want %v", err, ErrUnexpectedText)
		}
		if d.Pending() {
			t.Fatal("decoder still pending after the error")
		}
	})
	t.Run("binary without header", func(t *testing.T) {
		var d Decoder
		if _, err := d.DecodeBinary([]byte{1}); !errors.Is(err, ErrUnexpectedBinary) {
			t.Fatalf("got %v, want %v", err, ErrUnexpectedBinary)
		}
	})
	for _, data := range []string{
		`51-["a",{"_placeholder":true,"num":1}]`,
		`51-["a",{"_placeholder":true,"num":-1}]`,
		`51-["a",{"_placeholder":true,"num":"0"}]`,
		`51-["a",{"_placeholder":true,"num":0.5}]`,
		`51-["a",{"_placeholder":true}]`,
	} {
		t.Run(data, func(t *testing.T) {
			var d Decoder
			if _, err := d.DecodeText([]byte(data)); err != nil {
				t.Fatal(err)
			}
			if _, err := d.DecodeBinary([]byte{1}); !errors.Is(err, ErrIllegalAttach) {
				t.Fatalf("got %v, want %v", err, ErrIllegalAttach)
			}
		})
	}
	t.Run("decode refuses attachments", func(t *testing.T) {
		if _, err := Decode([]byte(`51-["a",{"_placeholder":true,"num":0}]`)); !errors.Is(err, ErrIllegalAttach) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestEventName(t *testing.T) {
	tests := []struct {
		data string
		name string
		ok   bool
	}{
		{`["hello",1]`, "hello", true},
		{` [ "a\"b" ]`, `a"b`, true},
		{`[1,"x"]`, "1", true},
		{`[-2.5]`, "-2.5", true},
		{`[null]`, "", false},
		{`[]`, "", false},
		{`[["x"]]`, "", false},
	}
	for _, tt := range tests {
		name, ok := EventName([]byte(tt.data))
		if name != tt.name || ok != tt.ok {
			t.Errorf("EventName(%s) = %q, %v; want %q, %v", tt.data, name, ok, tt.name, tt.ok)
		}
	}
}

func TestSplitArray(t *testing.T) {
	tests := []struct {
		data string
		want []string
	}{
		{`[]`, nil},
		{`[ ]`, nil},
		{`["a"]`, []string{`"a"`}},
		{`["a,]", {"b":[1,2]}, 3, true, null]`, []string{`"a,]"`, `{"b":[1,2]}`, `3`, `true`, `null`}},
		{`["\"]",[["]"]]]`, []string{`"\"]"`, `[["]"]]`}},
		{` [ 1 , 2 ] `, []string{`1`, `2`}},
	}
	for _, tt := range tests {
		got, err := SplitArray([]byte(tt.data))
		if err != nil {
			t.Fatalf("SplitArray(%s): %v", tt.data, err)
		}
		var gs []string
		for _, g := range got {
			gs = append(gs, string(g))
		}
		if !reflect.DeepEqual(gs, tt.want) {
			t.Errorf("SplitArray(%s) = %q, want %q", tt.data, gs, tt.want)
		}
	}
	if _, err := SplitArray([]byte(`{"a":1}`)); err == nil {
		t.Error("SplitArray accepted an object")
	}
}

type blob struct {
	Name  string `json:"name"`
	Data  []byte `json:"data"`
	Skip  []byte `json:"-"`
	Inner *struct {
		More []byte `json:"more"`
	} `json:"inner,omitempty"`
}

func TestMarshalEvent(t *testing.T) {
	tests := []struct {
		name  string
		event string
		args  []any
		json  string
		atts  [][]byte
	}{
		{"no args", "ping", nil, `["ping"]`, nil},
		{"js escaping", "m", []any{"<b>&"}, `["m","<b>&"]`, nil},
		{"salutations", "salutations", []any{"Hello!", map[string]string{"mr": "john"}, []byte{1, 2, 3, 4}},
			`["salutations","Hello!",{"mr":"john"},{"_placeholder":true,"num":0}]`, [][]byte{{1, 2, 3, 4}}},
		{"nested", "n", []any{map[string]any{"a": []any{[]byte{1}, map[string]any{"b": []byte{2}}}}},
			`["n",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`, [][]byte{{1}, {2}}},
		{"struct fields", "s", []any{blob{Name: "x", Data: []byte{9}, Skip: []byte{7}}},
			`["s",{"name":"x","data":{"_placeholder":true,"num":0}}]`, [][]byte{{9}}},
		{"pointer struct", "s", []any{&blob{Name: "y", Data: []byte{}, Inner: &struct {
			More []byte `json:"more"`
		}{More: []byte{5, 6}}}},
			`["s",{"name":"y","data":{"_placeholder":true,"num":0},"inner":{"more":{"_placeholder":true,"num":1}}}]`, [][]byte{{}, {5, 6}}},
		{"nil bytes are null", "z", []any{[]byte(nil)}, `["z",null]`, nil},
		{"raw message stays JSON", "r", []any{json.RawMessage(`{"k":[1]}`)}, `["r",{"k":[1]}]`, nil},
		{"byte array is numbers", "a", []any{[2]byte{1, 2}}, `["a",[1,2]]`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, atts, err := MarshalEvent(tt.event, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if string(data) != tt.json {
				t.Fatalf("json = %s\nwant   %s", data, tt.json)
			}
			if !reflect.DeepEqual(atts, tt.atts) {
				t.Fatalf("attachments = %v, want %v", atts, tt.atts)
			}
		})
	}
}

func TestMarshalMapOrderNumbersPlaceholders(t *testing.T) {
	// Map keys are sorted by encoding/json; placeholders are numbered in the
	// order they appear in the text, whatever order the walk met them.
	m := map[string][]byte{}
	for _, k := range []string{"e", "d", "c", "b", "a"} {
		m[k] = []byte(k)
	}
	data, atts, err := MarshalEvent("m", []any{m})
	if err != nil {
		t.Fatal(err)
	}
	want := `["m",{"a":{"_placeholder":true,"num":0},"b":{"_placeholder":true,"num":1},"c":{"_placeholder":true,"num":2},"d":{"_placeholder":true,"num":3},"e":{"_placeholder":true,"num":4}}]`
	if string(data) != want {
		t.Fatalf("got %s", data)
	}
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		if string(atts[i]) != k {
			t.Fatalf("attachment %d = %q, want %q", i, atts[i], k)
		}
	}
}

func TestMarshalLimits(t *testing.T) {
	var args []any
	for range MaxAttachments + 1 {
		args = append(args, []byte{1})
	}
	if _, _, err := MarshalEvent("x", args); !errors.Is(err, ErrTooManyAttach) {
		t.Fatalf("11 attachments: got %v", err)
	}
	if _, _, err := MarshalEvent("x", []any{make(chan int)}); err == nil || !strings.Contains(err.Error(), "argument 1") {
		t.Fatalf("channel argument: got %v", err)
	}
	data, _, err := MarshalAck(nil)
	if err != nil || string(data) != "[]" {
		t.Fatalf("MarshalAck(nil) = %s, %v", data, err)
	}
}

func TestMarshalDoesNotTouchArgs(t *testing.T) {
	b := []byte{1, 2}
	v := blob{Data: b}
	if _, _, err := MarshalEvent("x", []any{v, &v}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v.Data, []byte{1, 2}) {
		t.Fatalf("argument changed to %v", v.Data)
	}
}

func TestUnmarshal(t *testing.T) {
	atts := [][]byte{{1, 2}, {3}}
	t.Run("bytes", func(t *testing.T) {
		var b []byte
		if err := Unmarshal([]byte(`{"_placeholder":true,"num":1}`), atts, &b); err != nil || !bytes.Equal(b, []byte{3}) {
			t.Fatalf("got %v, %v", b, err)
		}
	})
	t.Run("any", func(t *testing.T) {
		var v any
		if err := Unmarshal([]byte(`{"a":[{"_placeholder":true,"num":0}],"n":1}`), atts, &v); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"a": []any{[]byte{1, 2}}, "n": 1.0}
		if !reflect.DeepEqual(v, want) {
			t.Fatalf("got %#v", v)
		}
	})
	t.Run("struct", func(t *testing.T) {
		var v struct {
			Name string         `json:"name"`
			Data []byte         `json:"data"`
			Any  any            `json:"any"`
			Map  map[string]any `json:"map"`
			List [][]byte       `json:"list"`
			Big  int64          `json:"big"`
		}
		raw := `{"name":"x","data":{"_placeholder":true,"num":0},"any":{"_placeholder":true,"num":1},` +
			`"map":{"k":{"_placeholder":true,"num":0}},"list":[{"_placeholder":true,"num":1}],"big":9007199254740993}`
		if err := Unmarshal([]byte(raw), atts, &v); err != nil {
			t.Fatal(err)
		}
		if v.Name != "x" || !bytes.Equal(v.Data, atts[0]) || !reflect.DeepEqual(v.Any, atts[1]) ||
			!reflect.DeepEqual(v.Map["k"], atts[0]) || !reflect.DeepEqual(v.List, [][]byte{atts[1]}) || v.Big != 9007199254740993 {
			t.Fatalf("got %+v", v)
		}
	})
	t.Run("type mismatch", func(t *testing.T) {
		var n int
		if err := Unmarshal([]byte(`{"_placeholder":true,"num":0}`), atts, &n); err == nil {
			t.Fatal("decoded binary into an int")
		}
	})
}

func TestRoundTrip(t *testing.T) {
	type msg struct {
		Text  string            `json:"text"`
		Files map[string][]byte `json:"files"`
	}
	in := msg{Text: "hi", Files: map[string][]byte{"a.bin": {0, 255}, "b.bin": {}}}
	data, atts, err := MarshalEvent("upload", []any{in})
	if err != nil {
		t.Fatal(err)
	}
	args, err := SplitArray(data)
	if err != nil {
		t.Fatal(err)
	}
	var out msg
	if err := Unmarshal(args[1], atts, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: got %+v, want %+v", out, in)
	}
}

func TestNumericEventNames(t *testing.T) {
	for in, want := range map[string]string{
		`[1]`: "1", `[1.0]`: "1", `[1e2]`: "100", `[-0]`: "0", `[-2.5]`: "-2.5", `[0.000001]`: "0.000001",
		`[1e21]`: "1e+21", `[1.5e-7]`: "1.5e-7", `[123456789012345678]`: "123456789012345680",
	} {
		if got, ok := EventName([]byte(in)); !ok || got != want {
			t.Errorf("EventName(%s) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

func TestValidateEvent(t *testing.T) {
	for _, tt := range []struct {
		data string
		n    int
		ok   bool
	}{
		{`["a",1]`, 0, true},
		{`["a",{"_placeholder":true,"num":0}]`, 1, true},
		{`["a",{"_placeholder":true,"num":1}]`, 1, false},
		{`["connect"]`, 0, false},
		{`{"a":1}`, 0, false},
		{`["a"`, 0, false},
	} {
		if err := ValidateEvent(json.RawMessage(tt.data), tt.n); (err == nil) != tt.ok {
			t.Errorf("ValidateEvent(%s, %d) = %v", tt.data, tt.n, err)
		}
	}
}

func TestBinaryWhereStringExpected(t *testing.T) {
	atts := [][]byte{{1}}
	var v struct {
		S string
		B []byte
		R json.RawMessage
	}
	if err := Unmarshal([]byte(`{"S":{"_placeholder":true,"num":0}}`), atts, &v); err == nil || strings.Contains(v.S, markerSeedB64) {
		t.Fatalf("string field: %q %v", v.S, err)
	}
	v.S = ""
	if err := Unmarshal([]byte(`{"R":{"_placeholder":true,"num":0}}`), atts, &v); err == nil {
		t.Fatalf("raw field accepted a placeholder: %s", v.R)
	}
	if err := Unmarshal([]byte(`{"S":"x","B":{"_placeholder":true,"num":0}}`), atts, &v); err != nil || v.S != "x" || v.B[0] != 1 {
		t.Fatalf("valid input refused: %+v %v", v, err)
	}
}

package parser

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rallyhq/rally/internal/fuzzseed"
)

// Fuzz targets of the Socket.IO parser. Their seeds are the vectors of
// section F of the protocol reference (docs: SOCKETIO.md); each seed is
// added with f.Add and also kept as a file under testdata/fuzz/<target>/ so
// that a plain "go test" runs it. After changing a seed list, rewrite the
// files with
//
//	RALLY_WRITE_FUZZ_SEEDS=1 go test -run 'Fuzz' ./internal/parser

// fuzzSeed is one seed input: the name of its corpus file and the values of
// the target's parameters.
type fuzzSeed struct {
	name string
	args []any
}

// addFuzzSeeds adds the seeds to f and checks their corpus files.
func addFuzzSeeds(f *testing.F, seeds []fuzzSeed) {
	f.Helper()
	for _, s := range seeds {
		values := make([][]byte, len(s.args))
		for i, a := range s.args {
			values[i] = a.([]byte)
		}
		fuzzseed.Add(f, s.name, values...)
	}
}

// socketVectors are the Socket.IO vectors F15–F39, as the parser sees them:
// without the Engine.IO "4" in front.
var socketVectors = []struct{ name, text string }{
	{"F15", `0`},
	{"F16", `0{"token":"123"}`},
	{"F17a", `0/admin,`},
	{"F17b", `0/admin`},
	{"F18", `0/admin,{"token":"123"}`},
	{"F19", `0{"sid":"wZX3oN0bSVIhsaknAAAI"}`},
	{"F20", `0{"sid":"wZX3oN0bSVIhsaknAAAI","pid":"YnpgTDCqE5ktbvdVAAAB"}`},
	{"F21", `0{"pid":"YnpgTDCqE5ktbvdVAAAB","offset":"PzuyzW0.1"}`},
	{"F22", `4{"message":"Not authorized","data":{"code":42}}`},
	{"F23", `4/random,{"message":"Invalid namespace"}`},
	{"F24a", `1`},
	{"F24b", `1/admin,`},
	{"F25", `2["hello",1,{"a":true}]`},
	{"F26", `2/chat,["hello"]`},
	{"F27", `212["hello"]`},
	{"F28", `2/chat,12["hello"]`},
	{"F29", `3456[1,"2",{"3":[false]}]`},
	{"F30", `37[]`},
	{"F31", `2["message","hi"]`},
	{"F32", `2[1,"numeric event"]`},
	{"F33", `51-["bin",{"_placeholder":true,"num":0}]`},
	{"F34", `52-["n",{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`},
	{"F35", `61-/admin,5[{"_placeholder":true,"num":0},"x"]`},
	{"F36a", `2["connect"]`},
	{"F36b", `2["disconnecting"]`},
	{"F36c", `2{}`},
	{"F36d", `2[]`},
	{"F36e", `2abc["x"]`},
	{"F36f", `0[]`},
	{"F36g", `1{}`},
	{"F37a", `7`},
	{"F37b", `5`},
	{"F37c", `50-["a"]`},
	{"F37d", `511-["a"]`},
	{"F38", `2["u",null,null]`},
	{"F39a", `20["tick"]`},
	{"F39b", `21["tick"]`},
	{"F39c", `22["tick"]`},
	// Regression: a number beyond float64 range is valid JSON; it made a
	// binary packet, and only a binary one, fail to decode.
	{"huge-number-binary", `51-["a",{"_placeholder":true,"num":0},1e400]`},
}

// FuzzDecode checks the decoding of one text message: no panic, the
// one-shot Decode and the Decoder agree, every accepted packet is well
// formed and survives AppendText and decoding again.
func FuzzDecode(f *testing.F) {
	var seeds []fuzzSeed
	for _, v := range socketVectors {
		seeds = append(seeds, fuzzSeed{v.name, []any{[]byte(v.text)}})
	}
	addFuzzSeeds(f, seeds)

	f.Fuzz(func(t *testing.T, text []byte) {
		var d Decoder
		p, err := d.DecodeText(text)
		q, qerr := Decode(text)
		if err != nil {
			if p != nil || d.Pending() {
				t.Fatalf("DecodeText(%q) = %v, %v and pending %v", text, p, err, d.Pending())
			}
			if qerr == nil {
				t.Fatalf("Decode(%q) accepts what DecodeText refuses (%v)", text, err)
			}
			return
		}
		if p != nil {
			if qerr != nil || !equalPackets(p, q) {
				t.Fatalf("Decode(%q) = %v, %v; DecodeText gave %v", text, q, qerr, p)
			}
			if p.Type == BinaryEvent || p.Type == BinaryAck {
				t.Fatalf("DecodeText(%q) returned %s without attachments", text, p.Type)
			}
		} else {
			// The packet announces attachments: complete it.
			if !d.Pending() || d.pending.Type != BinaryEvent && d.pending.Type != BinaryAck {
				t.Fatalf("DecodeText(%q) = nil, nil without waiting for a binary packet", text)
			}
			if d.want < 1 || d.want > MaxAttachments {
				t.Fatalf("DecodeText(%q) waits for %d attachments", text, d.want)
			}
			if !errors.Is(qerr, ErrIllegalAttach) {
				t.Fatalf("Decode(%q) = %v, %v; want ErrIllegalAttach", text, q, qerr)
			}
			n, data := d.want, d.pending.Data
			for i := range n {
				if p != nil || err != nil {
					t.Fatalf("DecodeBinary returned %v, %v after %d of %d attachments", p, err, i, n)
				}
				p, err = d.DecodeBinary([]byte{byte(i)})
			}
			if d.Pending() {
				t.Fatalf("still pending after %d attachments", n)
			}
			if problem := placeholderProblem(data, n); err != nil || problem != nil {
				if err == nil || problem == nil {
					t.Fatalf("%q with %d attachments: decoder error %v, placeholder problem %v", text, n, err, problem)
				}
				return
			}
		}
		checkAccepted(t, p)

		// Round trip through the text form.
		text2 := p.AppendText(nil)
		var d2 Decoder
		r, err := d2.DecodeText(text2)
		for _, a := range p.Attachments {
			if r != nil || err != nil {
				break
			}
			r, err = d2.DecodeBinary(a)
		}
		if err != nil || !equalPackets(p, r) {
			t.Fatalf("%q decoded to %v; its text form %q decodes to %v, %v", text, p, text2, r, err)
		}
	})
}

// checkAccepted checks the invariants of a packet returned by a Decoder.
func checkAccepted(t *testing.T, p *Packet) {
	t.Helper()
	if p.Type > BinaryAck {
		t.Fatalf("packet of type %d", p.Type)
	}
	if !strings.HasPrefix(p.Namespace, "/") || strings.Contains(p.Namespace, ",") {
		t.Fatalf("namespace %q", p.Namespace)
	}
	if p.ID != NoID && (p.ID < 0 || p.ID > MaxID) {
		t.Fatalf("ack id %d", p.ID)
	}
	if p.Data != nil && !json.Valid(p.Data) {
		t.Fatalf("invalid JSON payload %q", p.Data)
	}
	kind := jsonKind(p.Data)
	switch p.Type {
	case Connect:
		if kind != 0 && kind != '{' || p.ID != NoID {
			t.Fatalf("CONNECT with payload %q, id %d", p.Data, p.ID)
		}
	case Disconnect:
		if kind != 0 || p.ID != NoID {
			t.Fatalf("DISCONNECT with payload %q, id %d", p.Data, p.ID)
		}
	case ConnectError:
		if kind != '{' && kind != '"' || p.ID != NoID {
			t.Fatalf("CONNECT_ERROR with payload %q, id %d", p.Data, p.ID)
		}
	case Event, BinaryEvent:
		name, ok := EventName(p.Data)
		if kind != '[' || !ok || IsReserved(name) {
			t.Fatalf("%s with payload %q: event name %q, %v", p.Type, p.Data, name, ok)
		}
	case Ack, BinaryAck:
		if kind != '[' || p.ID == NoID {
			t.Fatalf("%s with payload %q, id %d", p.Type, p.Data, p.ID)
		}
	}
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		if len(p.Attachments) < 1 || len(p.Attachments) > MaxAttachments {
			t.Fatalf("%s with %d attachments", p.Type, len(p.Attachments))
		}
		for i, a := range p.Attachments {
			if a == nil {
				t.Fatalf("attachment %d missing", i)
			}
		}
		if err := placeholderProblem(p.Data, len(p.Attachments)); err != nil {
			t.Fatalf("%s %q with %d attachments: %v", p.Type, p.Data, len(p.Attachments), err)
		}
	} else if len(p.Attachments) != 0 {
		t.Fatalf("%s with %d attachments", p.Type, len(p.Attachments))
	}
}

// placeholderProblem reports a placeholder of data that does not refer to
// one of n attachments: an object whose "_placeholder" is true and whose
// "num" is not an integer in [0, n). It decodes data on its own, with exact
// numbers, rather than through the parser's walk.
func placeholderProblem(data []byte, n int) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		case map[string]any:
			if v["_placeholder"] == true {
				num, ok := v["num"].(json.Number)
				if !ok {
					return fmt.Errorf("placeholder num %v", v["num"])
				}
				f, err := num.Float64()
				if err != nil || f != math.Trunc(f) || f < 0 || f >= float64(n) {
					return fmt.Errorf("placeholder num %s of %d attachments", num, n)
				}
				return nil
			}
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(tree)
}

func equalPackets(a, b *Packet) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Type != b.Type || a.Namespace != b.Namespace || a.ID != b.ID || !bytes.Equal(a.Data, b.Data) ||
		(a.Data == nil) != (b.Data == nil) || len(a.Attachments) != len(b.Attachments) {
		return false
	}
	for i := range a.Attachments {
		if !bytes.Equal(a.Attachments[i], b.Attachments[i]) {
			return false
		}
	}
	return true
}

// messageSequence turns fuzz input into the Engine.IO messages of one
// session, in the shape of a polling payload: messages separated by 0x1e, a
// binary message written "b" and base64 (or "b" and raw bytes when that is
// not base64), a text message with or without the Engine.IO "4".
func messageSequence(data []byte) (msgs [][]byte, binary []bool) {
	for _, seg := range bytes.Split(data, []byte{0x1e}) {
		switch {
		case len(seg) > 0 && seg[0] == 'b':
			b, err := base64.StdEncoding.DecodeString(string(seg[1:]))
			if err != nil {
				b = seg[1:]
			}
			msgs, binary = append(msgs, b), append(binary, true)
		case len(seg) > 0 && seg[0] == '4':
			msgs, binary = append(msgs, seg[1:]), append(binary, false)
		default:
			msgs, binary = append(msgs, seg), append(binary, false)
		}
	}
	return msgs, binary
}

// FuzzDecoderSequence feeds a sequence of text and binary messages to one
// Decoder and checks it against a model of the reassembly rules: no panic,
// a completed packet has exactly the attachments it announced, in order,
// and all its placeholders in range; after an error nothing is pending.
func FuzzDecoderSequence(f *testing.F) {
	var seeds []fuzzSeed
	for _, v := range socketVectors {
		seeds = append(seeds, fuzzSeed{v.name, []any{[]byte("4" + v.text)}})
	}
	seeds = append(seeds,
		fuzzSeed{"F33-polling", []any{[]byte("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID")}},
		fuzzSeed{"F34-polling", []any{[]byte("452-[\"n\",{\"a\":[{\"_placeholder\":true,\"num\":0},{\"b\":{\"_placeholder\":true,\"num\":1}}]}]\x1ebAQ==\x1ebAg==")}},
		fuzzSeed{"F35-polling", []any{[]byte("461-/admin,5[{\"_placeholder\":true,\"num\":0},\"x\"]\x1eb/w==")}},
		fuzzSeed{"F33-text-while-pending", []any{[]byte("451-[\"bin\",{\"_placeholder\":true,\"num\":0}]\x1e42[\"hello\"]\x1ebAQID")}},
		fuzzSeed{"F9-binary-without-header", []any{[]byte("bAQIDBA==\x1e42[\"hello\",1,{\"a\":true}]")}},
		fuzzSeed{"E-sample-session", []any{[]byte("40\x1e42[\"message\",\"Hello!\"]\x1e451-[\"salutations\",\"Hello!\",{\"mr\":\"john\"},{\"_placeholder\":true,\"num\":0}]\x1ebAQIDBA==\x1e41")}},
	)
	addFuzzSeeds(f, seeds)

	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, binary := messageSequence(data)
		var d Decoder
		var fed [][]byte // attachments given to the pending packet
		for i, m := range msgs {
			wasPending, want := d.Pending(), d.want
			var p *Packet
			var err error
			if binary[i] {
				p, err = d.DecodeBinary(m)
				switch {
				case !wasPending:
					if p != nil || !errors.Is(err, ErrUnexpectedBinary) {
						t.Fatalf("message %d: binary without a header: %v, %v", i, p, err)
					}
				case len(fed)+1 < want:
					if p != nil || err != nil || !d.Pending() {
						t.Fatalf("message %d: attachment %d of %d: %v, %v", i, len(fed)+1, want, p, err)
					}
					fed = append(fed, m)
				default:
					fed = append(fed, m)
					if d.Pending() || (p == nil) == (err == nil) {
						t.Fatalf("message %d: last attachment: %v, %v, pending %v", i, p, err, d.Pending())
					}
					if p != nil {
						checkAccepted(t, p)
						if len(p.Attachments) != want {
							t.Fatalf("message %d: %d attachments, %d announced", i, len(p.Attachments), want)
						}
						for j := range fed {
							if !bytes.Equal(p.Attachments[j], fed[j]) {
								t.Fatalf("message %d: attachment %d is %x, want %x", i, j, p.Attachments[j], fed[j])
							}
						}
					} else if !errors.Is(err, ErrIllegalAttach) && !errors.Is(err, ErrInvalidPayload) {
						t.Fatalf("message %d: last attachment: unexpected error %v", i, err)
					}
					fed = nil
				}
			} else {
				p, err = d.DecodeText(m)
				switch {
				case wasPending:
					if p != nil || !errors.Is(err, ErrUnexpectedText) {
						t.Fatalf("message %d: text while reconstructing: %v, %v", i, p, err)
					}
					fed = nil
				case err != nil:
				case p == nil:
					if !d.Pending() || d.want < 1 || d.want > MaxAttachments {
						t.Fatalf("message %d: %q: waiting for %d attachments (pending %v)", i, m, d.want, d.Pending())
					}
				default:
					checkAccepted(t, p)
				}
			}
			if err != nil && d.Pending() {
				t.Fatalf("message %d: still pending after error %v", i, err)
			}
		}
	})
}

// fuzzUnmarshalSeeds are JSON arguments of the vectors, some with
// attachments.
var fuzzUnmarshalSeeds = []fuzzSeed{
	{"F25-arg1", []any{[]byte(`1`), []byte{}}},
	{"F25-arg2", []any{[]byte(`{"a":true}`), []byte{}}},
	{"F29-arg3", []any{[]byte(`{"3":[false]}`), []byte{}}},
	{"F31-arg1", []any{[]byte(`"hi"`), []byte{}}},
	{"F33-arg1", []any{[]byte(`{"_placeholder":true,"num":0}`), []byte("\x01\x02\x03")}},
	{"F34-arg1", []any{[]byte(`{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}`), []byte("\x01\x1e\x02")}},
	{"F35-args", []any{[]byte(`[{"_placeholder":true,"num":0},"x"]`), []byte("\xff")}},
	{"F38-arg1", []any{[]byte(`null`), []byte{}}},
	{"struct", []any{[]byte(`{"B":{"_placeholder":true,"num":1},"V":[{"_placeholder":true,"num":0},2]}`), []byte("a\x1eb")}},
	{"struct-base64", []any{[]byte(`{"B":"AQID","V":{"x":{"_placeholder":true,"num":0}}}`), []byte("a")}},
}

// fuzzArg is the struct that FuzzUnmarshal decodes into: a binary field and
// an interface field.
type fuzzArg struct {
	B []byte
	V any
}

// fuzzAttachments turns fuzz input into attachments: none for empty input,
// else the parts separated by 0x1e.
func fuzzAttachments(data []byte) [][]byte {
	if len(data) == 0 {
		return nil
	}
	return bytes.Split(data, []byte{0x1e})
}

// FuzzUnmarshal decodes one JSON argument with attachments into several Go
// types: no panic, no internal marker ever reaches the caller, types that
// cannot hold binary decode as encoding/json decodes them (but for what a
// failed decode leaves in the destination, which no handler sees), and
// with valid placeholders every destination sees the binary values where
// they are.
func FuzzUnmarshal(f *testing.F) {
	addFuzzSeeds(f, fuzzUnmarshalSeeds)

	f.Fuzz(func(t *testing.T, raw []byte, atts []byte) {
		attachments := fuzzAttachments(atts)

		// Types without binary: what encoding/json says.
		var s, js string
		err, jerr := Unmarshal(raw, attachments, &s), json.Unmarshal(raw, &js)
		if (err == nil) != (jerr == nil) || err == nil && s != js {
			t.Fatalf("string: Unmarshal = %q, %v; json.Unmarshal = %q, %v", s, err, js, jerr)
		}
		var n, jn int
		err, jerr = Unmarshal(raw, attachments, &n), json.Unmarshal(raw, &jn)
		if (err == nil) != (jerr == nil) || err == nil && n != jn {
			t.Fatalf("int: Unmarshal = %d, %v; json.Unmarshal = %d, %v", n, err, jn, jerr)
		}

		var b []byte
		errB := Unmarshal(raw, attachments, &b)
		var m map[string]any
		errM := Unmarshal(raw, attachments, &m)
		var st fuzzArg
		errS := Unmarshal(raw, attachments, &st)
		var a any
		errA := Unmarshal(raw, attachments, &a)
		if !json.Valid(raw) && (errB == nil || errM == nil || errS == nil || errA == nil) {
			t.Fatalf("Unmarshal(%q) accepts invalid JSON: []byte %v, map %v, struct %v, any %v", raw, errB, errM, errS, errA)
		}
		for _, v := range []any{b, m, st, a} {
			if leaked := findMarker(reflect.ValueOf(v)); leaked != "" {
				t.Fatalf("Unmarshal(%q, %d attachments) leaks marker %q into %#v", raw, len(attachments), leaked, v)
			}
		}

		// With valid placeholders, compare with an independent resolution.
		if !json.Valid(raw) || placeholderProblem(raw, len(attachments)) != nil {
			return
		}
		want, err := resolveTree(raw, attachments)
		if err != nil {
			if errA == nil {
				t.Fatalf("any: Unmarshal accepts %q: %v", raw, err)
			}
			return
		}
		if errA != nil || !reflect.DeepEqual(a, want) {
			t.Fatalf("any: Unmarshal(%q) = %#v, %v; want %#v", raw, a, errA, want)
		}
		switch w := want.(type) {
		case []byte:
			if errB != nil || !bytes.Equal(b, w) {
				t.Fatalf("[]byte: Unmarshal(%q) = %x, %v; want %x", raw, b, errB, w)
			}
		case map[string]any:
			if errM != nil || !reflect.DeepEqual(m, w) {
				t.Fatalf("map: Unmarshal(%q) = %#v, %v; want %#v", raw, m, errM, w)
			}
			if errS == nil {
				if bv, ok := w["B"].([]byte); ok && onlyKey(w, "B") && !bytes.Equal(st.B, bv) {
					t.Fatalf("struct: Unmarshal(%q).B = %x, want %x", raw, st.B, bv)
				}
				if vv, ok := w["V"]; ok && onlyKey(w, "V") && !reflect.DeepEqual(st.V, vv) {
					t.Fatalf("struct: Unmarshal(%q).V = %#v, want %#v", raw, st.V, vv)
				}
			}
		}
	})
}

// onlyKey reports whether key is the only key of m that matches it without
// regard to case (encoding/json's rule for struct fields).
func onlyKey(m map[string]any, key string) bool {
	for k := range m {
		if k != key && strings.EqualFold(k, key) {
			return false
		}
	}
	return true
}

// resolveTree decodes raw into a Go value and replaces its placeholders by
// attachments, without the parser's code.
func resolveTree(raw []byte, attachments [][]byte) (any, error) {
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		case map[string]any:
			if v["_placeholder"] == true {
				return attachments[int(v["num"].(float64))]
			}
			for k := range v {
				v[k] = walk(v[k])
			}
		}
		return v
	}
	return walk(tree), nil
}

// findMarker returns a marker (the parser's internal stand-in for a binary
// value) found anywhere in v, or "".
func findMarker(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if strings.Contains(v.String(), markerSeedB64) {
			return v.String()
		}
	case reflect.Interface, reflect.Pointer:
		if !v.IsNil() {
			return findMarker(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			if v.Kind() == reflect.Slice && bytes.Contains(v.Bytes(), markerSeed[:]) {
				return fmt.Sprintf("%x", v.Bytes())
			}
			return ""
		}
		for i := range v.Len() {
			if s := findMarker(v.Index(i)); s != "" {
				return s
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			if s := findMarker(it.Key()); s != "" {
				return s
			}
			if s := findMarker(it.Value()); s != "" {
				return s
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if s := findMarker(v.Field(i)); s != "" {
				return s
			}
		}
	}
	return ""
}

// fuzzValue is a struct among the generated arguments.
type fuzzValue struct {
	B []byte `json:"b"`
	V any    `json:"v"`
	S string `json:"s,omitempty"`
	N int64  `json:"n"`
}

// valueGen builds Go values from fuzz input.
type valueGen struct {
	in []byte
}

func (g *valueGen) byte() byte {
	if len(g.in) == 0 {
		return 0
	}
	c := g.in[0]
	g.in = g.in[1:]
	return c
}

func (g *valueGen) bytes() []byte {
	n := int(g.byte())
	if n == 255 {
		return nil
	}
	n %= 24
	if n > len(g.in) {
		n = len(g.in)
	}
	b := g.in[:n:n]
	g.in = g.in[n:]
	return b
}

// string returns valid UTF-8 (JSON cannot carry anything else), never the
// key that marks placeholders: an object with "_placeholder": true is a
// placeholder on the wire, whoever wrote it.
func (g *valueGen) string() string {
	s := strings.ToValidUTF8(string(g.bytes()), "\uFFFD")
	if s == "_placeholder" {
		s = "placeholder"
	}
	return s
}

func (g *valueGen) value(depth int) any {
	kind := g.byte() % 12
	if depth > 3 && kind >= 6 {
		kind %= 6
	}
	switch kind {
	case 0:
		return nil
	case 1:
		return g.byte()&1 == 1
	case 2:
		return float64(int8(g.byte()))
	case 3:
		var u uint64
		for range 8 {
			u = u<<8 | uint64(g.byte())
		}
		if f := math.Float64frombits(u); !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f
		}
		return 0.5
	case 4:
		return g.string()
	case 5:
		return g.bytes()
	case 6, 7:
		n := int(g.byte() % 5)
		if n == 4 {
			return []any(nil)
		}
		s := make([]any, n)
		for i := range s {
			s[i] = g.value(depth + 1)
		}
		return s
	case 8:
		n := int(g.byte() % 4)
		m := make(map[string]any, n)
		for range n {
			m[g.string()] = g.value(depth + 1)
		}
		return m
	case 9:
		return fuzzValue{B: g.bytes(), V: g.value(depth + 1), S: g.string(), N: int64(int16(g.byte()) << 4)}
	case 10:
		if g.byte()&1 == 0 {
			return (*fuzzValue)(nil)
		}
		return &fuzzValue{B: g.bytes(), V: g.value(depth + 1)}
	default:
		n := int(g.byte() % 4)
		m := make(map[string][]byte, n)
		for range n {
			m[g.string()] = g.bytes()
		}
		return m
	}
}

// normalize returns what a generated value looks like once decoded into
// an interface: float64 numbers, []any, map[string]any, []byte binary.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, bool, string, float64:
		return x
	case int64:
		return float64(x)
	case []byte:
		if x == nil {
			return nil
		}
		return x
	case []any:
		if x == nil {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case map[string]any:
		if x == nil {
			return nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[string][]byte:
		if x == nil {
			return nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case fuzzValue:
		out := map[string]any{"b": normalize(x.B), "v": normalize(x.V), "n": float64(x.N)}
		if x.S != "" {
			out["s"] = x.S
		}
		return out
	case *fuzzValue:
		if x == nil {
			return nil
		}
		return normalize(*x)
	}
	panic(fmt.Sprintf("normalize: %T", v))
}

// countBinary counts the binary values in v.
func countBinary(v any) int {
	switch x := v.(type) {
	case []byte:
		if x != nil {
			return 1
		}
	case []any:
		n := 0
		for _, e := range x {
			n += countBinary(e)
		}
		return n
	case map[string]any:
		n := 0
		for _, e := range x {
			n += countBinary(e)
		}
		return n
	case map[string][]byte:
		n := 0
		for _, e := range x {
			n += countBinary(e)
		}
		return n
	case fuzzValue:
		return countBinary(x.B) + countBinary(x.V)
	case *fuzzValue:
		if x != nil {
			return countBinary(*x)
		}
	}
	return 0
}

// FuzzMarshal builds an event name and arguments from the input, encodes
// them with MarshalEvent and MarshalAck, and decodes them back: through
// SplitArray and Unmarshal (into interfaces and into the arguments' own
// types), and through the wire text and a Decoder. Everything must come
// back equal, binary values included.
func FuzzMarshal(f *testing.F) {
	addFuzzSeeds(f, []fuzzSeed{
		// name "hello", args 1, {"a": true} (F25)
		{"F25", []any{[]byte("\x05hello\x02\x01\x08\x01\x01a\x01\x01")}},
		// name "bin", one binary arg 010203 (F33)
		{"F33", []any{[]byte("\x03bin\x01\x05\x03\x01\x02\x03")}},
		// name "n", {"a": [<01>, {"b": <02>}]} (F34)
		{"F34", []any{[]byte("\x01n\x01\x08\x01\x01a\x06\x02\x05\x01\x01\x08\x01\x01b\x05\x01\x02")}},
		// name "u", args null, null (F38)
		{"F38", []any{[]byte("\x01u\x02\x00\x00")}},
		// eleven binary values: too many for one packet (F37)
		{"F37-too-many", []any{[]byte("\x01x\x0b\x05\x01a\x05\x01b\x05\x01c\x05\x01d\x05\x01e\x05\x01f\x05\x01g\x05\x01h\x05\x01i\x05\x01j\x05\x01k")}},
		// a struct and a map of binary values
		{"struct", []any{[]byte("\x04blob\x02\x09\x02\xaa\xbb\x05\x01\xcc\x01s\x07\x0b\x02\x01k\x00\x01l\xff")}},
		// a reserved name: encodes, but no decoder takes it (F36)
		{"F36-reserved", []any{[]byte("\x07connect\x01\x04\x02hi")}},
	})

	f.Fuzz(func(t *testing.T, data []byte) {
		g := &valueGen{in: data}
		name := g.string()
		args := make([]any, g.byte()%6)
		binaries := 0
		for i := range args {
			args[i] = g.value(0)
			binaries += countBinary(args[i])
		}
		ns := "/" + strings.ReplaceAll(g.string(), ",", "")
		id := int64(g.byte()) - 1

		for _, withName := range []bool{true, false} {
			var text json.RawMessage
			var atts [][]byte
			var err error
			if withName {
				text, atts, err = MarshalEvent(name, args)
			} else {
				text, atts, err = MarshalAck(args)
			}
			if binaries > MaxAttachments {
				if !errors.Is(err, ErrTooManyAttach) {
					t.Fatalf("%d binary values: err = %v, want ErrTooManyAttach", binaries, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("marshal %q %#v: %v", name, args, err)
			}
			if len(atts) != binaries || !json.Valid(text) {
				t.Fatalf("marshal %#v: %q with %d attachments, want %d", args, text, len(atts), binaries)
			}
			if err := placeholderProblem(text, len(atts)); err != nil {
				t.Fatalf("marshal %#v: %q: %v", args, text, err)
			}
			elems, err := SplitArray(text)
			if err != nil {
				t.Fatalf("SplitArray(%q): %v", text, err)
			}
			if withName {
				if got, ok := EventName(text); !ok || got != name {
					t.Fatalf("EventName(%q) = %q, %v; want %q", text, got, ok, name)
				}
				elems = elems[1:]
			}
			if len(elems) != len(args) {
				t.Fatalf("%q: %d elements, want %d", text, len(elems), len(args))
			}
			for i, arg := range args {
				var a any
				if err := Unmarshal(elems[i], atts, &a); err != nil || !reflect.DeepEqual(a, normalize(arg)) {
					t.Fatalf("argument %d %#v: encoded %q, decoded into any: %#v, %v", i, arg, elems[i], a, err)
				}
				if arg == nil {
					continue
				}
				typed := reflect.New(reflect.TypeOf(arg))
				if err := Unmarshal(elems[i], atts, typed.Interface()); err != nil ||
					!reflect.DeepEqual(normalize(typed.Elem().Interface()), normalize(arg)) {
					t.Fatalf("argument %d %#v: encoded %q, decoded into %s: %#v, %v",
						i, arg, elems[i], typed.Type().Elem(), typed.Elem().Interface(), err)
				}
			}

			// The whole way: packet text, Decoder, attachments.
			p := &Packet{Type: Event, Namespace: ns, ID: id, Data: text, Attachments: atts}
			if !withName {
				p.Type = Ack
				p.ID = max(id, 0)
			}
			if len(atts) > 0 {
				p.Type += BinaryEvent - Event
			}
			var d Decoder
			got, err := d.DecodeText(p.AppendText(nil))
			for _, a := range atts {
				if got != nil || err != nil {
					break
				}
				got, err = d.DecodeBinary(bytes.Clone(a))
			}
			if withName && IsReserved(name) {
				if !errors.Is(err, ErrInvalidPayload) {
					t.Fatalf("reserved event %q: decoded %v, %v", name, got, err)
				}
				continue
			}
			if err != nil || !equalPackets(got, p) {
				t.Fatalf("packet %q with %d attachments decodes to %v, %v", p.AppendText(nil), len(atts), got, err)
			}
		}
	})
}

// FuzzSplitArray checks SplitArray and EventName against encoding/json:
// no panic on any input, and on a valid JSON array the elements and the
// event name that json.Unmarshal finds.
func FuzzSplitArray(f *testing.F) {
	var seeds []fuzzSeed
	for _, v := range socketVectors {
		p, err := Decode([]byte(v.text))
		if err != nil {
			var d Decoder
			if d.DecodeText([]byte(v.text)); d.Pending() {
				p = d.pending
			}
		}
		if p != nil && jsonKind(p.Data) == '[' {
			seeds = append(seeds, fuzzSeed{v.name, []any{[]byte(p.Data)}})
		}
	}
	seeds = append(seeds,
		fuzzSeed{"F36c-raw", []any{[]byte(`{}`)}},
		fuzzSeed{"F36d-raw", []any{[]byte(`[]`)}},
		fuzzSeed{"F36e-raw", []any{[]byte(`abc["x"]`)}},
		fuzzSeed{"null-name", []any{[]byte(`[null]`)}},
		fuzzSeed{"spaces", []any{[]byte(" [ \"a\\\"]\" , {\"b\" : [1, 2]} ,\t-3.5e+2 ,\n true , null ] ")}},
		fuzzSeed{"escapes", []any{[]byte(`["\\", "\u00e9\"", [["]"]], {"]":"["}]`)}},
	)
	addFuzzSeeds(f, seeds)

	f.Fuzz(func(t *testing.T, data []byte) {
		data = data[:len(data):len(data)] // no spare capacity to hide overruns
		elems, err := SplitArray(data)
		name, ok := EventName(data)
		if !json.Valid(data) || jsonKind(data) != '[' {
			return
		}
		var want []json.RawMessage
		if jerr := json.Unmarshal(data, &want); jerr != nil {
			t.Fatalf("json.Unmarshal(%q): %v", data, jerr)
		}
		if err != nil || len(elems) != len(want) {
			t.Fatalf("SplitArray(%q) = %q, %v; want %q", data, elems, err, want)
		}
		for i := range want {
			var g, w bytes.Buffer
			if json.Compact(&g, elems[i]) != nil || json.Compact(&w, want[i]) != nil || !bytes.Equal(g.Bytes(), w.Bytes()) {
				t.Fatalf("SplitArray(%q)[%d] = %q, want %q", data, i, elems[i], want[i])
			}
		}

		wantName, wantOK := "", false
		if len(want) > 0 {
			switch c := want[0][0]; {
			case c == '"':
				wantOK = json.Unmarshal(want[0], &wantName) == nil
			case c == '-' || c >= '0' && c <= '9':
				wantName, wantOK = string(want[0]), true
			}
		}
		if name != wantName || ok != wantOK {
			t.Fatalf("EventName(%q) = %q, %v; want %q, %v", data, name, ok, wantName, wantOK)
		}
		if ok && !utf8.ValidString(name) {
			t.Fatalf("EventName(%q) = %q: not UTF-8", data, name)
		}
	})
}

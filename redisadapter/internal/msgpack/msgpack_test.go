package msgpack

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hex vectors of REDIS-ADAPTER.md section 8: what notepack.io 3.0.1
// writes for the Node adapter and emitter. Each must decode to the value
// shown and encode back to the same bytes.
var vectors = []struct {
	name string
	hex  string
	want any
}{
	{
		name: "observed io.emit with numbers, bool and null",
		hex: `93 a6 6b4f746f524e
			83 a4 74797065 02
			   a4 64617461 94 a5 68656c6c6f 01 a3 74776f
			      85 a5 7468726565 cb 400c000000000000
			         a3 6e6567 f9
			         a3 626967 cf 0000010000000000
			         a1 74 c3
			         a1 6e c0
			   a3 6e7370 a1 2f
			83 a5 726f6f6d73 90 a6 657863657074 90 a5 666c616773 80`,
		want: []any{"kOtoRN",
			Map{{"type", int64(2)}, {"data", []any{"hello", int64(1), "two",
				Map{{"three", 3.5}, {"neg", int64(-7)}, {"big", int64(1 << 40)}, {"t", true}, {"n", nil}}}}, {"nsp", "/"}},
			Map{{"rooms", []any{}}, {"except", []any{}}, {"flags", Map{}}}},
	},
	{
		name: "observed room broadcast with binary",
		hex:  "93a66b4f746f524e83a47479706502a46461746193a362696ec40301020381a66e6573746564c40104a36e7370a12f83a5726f6f6d7391a5726f6f6d42a665786365707490a5666c61677380",
		want: []any{"kOtoRN",
			Map{{"type", int64(2)}, {"data", []any{"bin", []byte{1, 2, 3}, Map{{"nested", []byte{4}}}}}, {"nsp", "/"}},
			Map{{"rooms", []any{"roomB"}}, {"except", []any{}}, {"flags", Map{}}}},
	},
	{
		name: "observed multi-room volatile",
		hex:  "93a66b4f746f524e83a47479706502a46461746191a56d756c7469a36e7370a12f83a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2",
		want: []any{"kOtoRN",
			Map{{"type", int64(2)}, {"data", []any{"multi"}}, {"nsp", "/"}},
			Map{{"rooms", []any{"r1", "r2"}}, {"except", []any{"r3"}}, {"flags", Map{{"volatile", true}, {"compress", false}}}}},
	},
	{
		name: "broadcast to all",
		hex:  "93a641424344454683a47479706502a46461746192a568656c6c6f01a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
		want: []any{"ABCDEF",
			Map{{"type", int64(2)}, {"data", []any{"hello", int64(1)}}, {"nsp", "/"}},
			Map{{"rooms", []any{}}, {"except", []any{}}, {"flags", Map{}}}},
	},
	{
		name: "room, except, volatile, binary, /chat",
		hex:  "93a641424344454683a47479706502a46461746192a3696d67c403010203a36e7370a52f6368617483a5726f6f6d7391a27231a665786365707491a473696431a5666c61677381a8766f6c6174696c65c3",
		want: []any{"ABCDEF",
			Map{{"type", int64(2)}, {"data", []any{"img", []byte{1, 2, 3}}}, {"nsp", "/chat"}},
			Map{{"rooms", []any{"r1"}}, {"except", []any{"sid1"}}, {"flags", Map{{"volatile", true}}}}},
	},
	{
		name: "BROADCAST request",
		hex:  "85a3756964a6414243444546a9726571756573744964a6524551313233a47479706507a67061636b657483a47479706502a46461746191a171a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd1388",
		want: Map{{"uid", "ABCDEF"}, {"requestId", "REQ123"}, {"type", int64(7)},
			{"packet", Map{{"type", int64(2)}, {"data", []any{"q"}}, {"nsp", "/"}}},
			{"opts", Map{{"rooms", []any{}}, {"except", []any{}}, {"flags", Map{{"timeout", int64(5000)}}}}}},
	},
	{
		name: "BROADCAST_ACK response",
		hex:  "83a47479706509a9726571756573744964a6524551313233a67061636b6574a26f6b",
		want: Map{{"type", int64(9)}, {"requestId", "REQ123"}, {"packet", "ok"}},
	},
	{
		name: "emitter broadcast",
		hex:  "93a7656d697474657283a47479706502a46461746191a178a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490",
		want: []any{"emitter",
			Map{{"type", int64(2)}, {"data", []any{"x"}}, {"nsp", "/"}},
			Map{{"rooms", []any{}}, {"flags", Map{}}, {"except", []any{}}}},
	},
	{
		name: "numbers",
		hex:  "dc0011007fcc80ccffcd0100cdffffce00010000ffe0d0dfd080d1ff7fcb3ff8000000000000cf0020000000000000c0c3c2",
		want: []any{int64(0), int64(127), int64(128), int64(255), int64(256), int64(65535), int64(65536),
			int64(-1), int64(-32), int64(-33), int64(-128), int64(-129), 1.5, int64(1 << 53), nil, true, false},
	},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			wire := unhex(t, v.hex)
			got, err := Unmarshal(wire)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, v.want) {
				t.Fatalf("decode:\n got %#v\nwant %#v", got, v.want)
			}
			enc, err := Marshal(v.want)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(enc, wire) {
				t.Fatalf("encode:\n got %x\nwant %x", enc, wire)
			}
		})
	}
}

// JavaScript numbers: integer-valued floats take the smallest integer
// format, as notepack writes every integer.
func TestNumbersAsJavaScript(t *testing.T) {
	for _, c := range []struct {
		in   any
		want string
	}{
		{0.0, "00"}, {math.Copysign(0, -1), "00"}, {127.0, "7f"}, {128.0, "cc80"}, {-1.0, "ff"}, {-33.0, "d0df"},
		{65536.0, "ce00010000"}, {4294967296.0, "cf0000000100000000"}, {-2147483649.0, "d3ffffffff7fffffff"},
		{-32769, "d2ffff7fff"}, {int8(-5), "fb"}, {uint16(300), "cd012c"}, {uint64(math.MaxUint64), "cfffffffffffffffff"},
		{float32(0.5), "cb3fe0000000000000"}, {1e19, "cf8ac7230489e80000"}, {1e20, "cb4415af1d78b58c40"}, {1e21, "cb444b1ae4d6e2ef50"},
		{math.Inf(1), "cb7ff0000000000000"},
	} {
		got, err := Marshal(c.in)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != c.want {
			t.Errorf("Marshal(%v) = %x, want %s", c.in, got, c.want)
		}
	}
	nan, _ := Marshal(math.NaN())
	if nan[0] != 0xcb || len(nan) != 9 {
		t.Errorf("NaN: %x", nan)
	}
}

func TestStringAndBinaryWidths(t *testing.T) {
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("é", n/2) + strings.Repeat("a", n%2)
		b := bytes.Repeat([]byte{7}, n)
		for _, v := range []any{s, b} {
			enc, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(enc)
			if err != nil {
				t.Fatalf("%T of %d: %v", v, n, err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("%T of %d bytes does not round-trip", v, n)
			}
		}
	}
	// str and bin are distinct formats.
	if enc, _ := Marshal("ab"); enc[0] != 0xa2 {
		t.Fatalf("string: %x", enc)
	}
	if enc, _ := Marshal([]byte("ab")); enc[0] != 0xc4 {
		t.Fatalf("binary: %x", enc)
	}
	if enc, _ := Marshal(strings.Repeat("x", 40)); enc[0] != 0xd9 || enc[1] != 40 {
		t.Fatalf("str8: %x", enc[:2])
	}
}

func TestContainerWidths(t *testing.T) {
	for _, n := range []int{15, 16, 65535, 65536} {
		a := make([]any, n)
		m := make(Map, n)
		for i := range a {
			a[i] = int64(i % 100)
			m[i] = Entry{string(rune('a'+i%26)) + strings.Repeat("k", i/26%3), nil}
		}
		for _, v := range []any{a, m} {
			enc, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unmarshal(enc)
			if err != nil || !reflect.DeepEqual(got, v) {
				t.Fatalf("%T of %d does not round-trip: %v", v, n, err)
			}
		}
	}
}

// Every standard format decodes, including those notepack never writes.
func TestDecodeEveryFormat(t *testing.T) {
	for _, c := range []struct {
		hex  string
		want any
	}{
		{"ca3fc00000", 1.5},               // float32
		{"ca7f800000", math.Inf(1)},       // float32 +Inf
		{"d0ff", int64(-1)},               // int8
		{"d1fffe", int64(-2)},             // int16
		{"d2fffffffd", int64(-3)},         // int32
		{"d3fffffffffffffffc", int64(-4)}, // int64
		{"cc05", int64(5)},                // uint8 of a small value
		{"cd0006", int64(6)},              // uint16
		{"ce00000007", int64(7)},          // uint32
		{"cf0000000000000008", int64(8)},  // uint64
		{"cfffffffffffffffff", uint64(math.MaxUint64)},
		{"d903616263", "abc"},                      // str8
		{"da0003616263", "abc"},                    // str16
		{"db00000003616263", "abc"},                // str32
		{"c5000201ff", []byte{1, 0xff}},            // bin16
		{"c600000001aa", []byte{0xaa}},             // bin32
		{"dc000101", []any{int64(1)}},              // array16
		{"dd0000000101", []any{int64(1)}},          // array32
		{"de0001a16101", Map{{"a", int64(1)}}},     // map16
		{"df00000001a16101", Map{{"a", int64(1)}}}, // map32
		{"d40000", Undefined{}},                    // legacy undefined
		{"d5000102", []byte{1, 2}},                 // legacy ArrayBuffer, fixext2
		{"c70300010203", []byte{1, 2, 3}},          // legacy ArrayBuffer, ext8
		{"c8000100ab", []byte{0xab}},               // ext16 type 0
		{"c900000001000c", []byte{0x0c}},           // ext32 type 0
		{"d6ff5f5e1000", time.Unix(1600000000, 0).UTC()},
		{"d7ff" + "1dcd6500" + "5f5e1000", time.Unix(1600000000, 125000000).UTC()},
		{"c70cff000003e8ffffffffffffffff", time.Unix(-1, 1000).UTC()},
	} {
		got, err := Unmarshal(unhex(t, c.hex))
		if err != nil {
			t.Errorf("%s: %v", c.hex, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v, want %#v", c.hex, got, c.want)
		}
	}
}

func TestTimestampRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(1600000000, 0).UTC(),
		time.Unix(1600000000, 123000000).UTC(),
		time.Unix(-100, 5).UTC(),
		time.Unix(1<<35, 0).UTC(),
	} {
		enc, err := Marshal(tm)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Unmarshal(enc)
		if err != nil || !got.(time.Time).Equal(tm) {
			t.Errorf("%v: got %v (%x), %v", tm, got, enc, err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, h := range []string{
		"",                                // nothing
		"c1",                              // never used
		"92 01",                           // array cut short
		"a5 6869",                         // string cut short
		"c4 05 0102",                      // bin cut short
		"dd ffffffff",                     // huge array without content
		"81 01 02",                        // non-string key
		"d4 05 00",                        // unknown extension
		"01 02",                           // trailing byte
		"cb 0000",                         // float cut short
		strings.Repeat("91", 2000) + "c0", // too deep
	} {
		if _, err := Unmarshal(unhex(t, h)); err == nil {
			t.Errorf("%q: no error", h)
		}
	}
}

func TestUndefinedLeftOutOfMaps(t *testing.T) {
	enc, err := Marshal(Map{{"a", int64(1)}, {"u", Undefined{}}, {"b", nil}})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(enc); got != "82a16101a162c0" {
		t.Fatalf("got %s", got)
	}
	if enc, _ := Marshal([]any{Undefined{}}); hex.EncodeToString(enc) != "91c0" {
		t.Fatalf("undefined in an array: %x", enc)
	}
}

func TestMapOfGoValues(t *testing.T) {
	enc, err := Marshal(map[string]any{"b": 1, "a": []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(enc); got != "82a16191a178a16201" {
		t.Fatalf("got %s", got)
	}
	if _, err := Marshal(struct{}{}); err == nil {
		t.Fatal("a struct encoded")
	}
}

func TestFromJSON(t *testing.T) {
	atts := [][]byte{{1, 2}, {3}}
	v, err := FromJSON([]byte(`["ev",1,-2,3.5,1e2,18446744073709551615,1e30,"s",null,true,{"z":{"_placeholder":true,"num":1},"a":[{"_placeholder":true,"num":0}]}]`), atts)
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"ev", int64(1), int64(-2), 3.5, 100.0, uint64(math.MaxUint64), 1e30, "s", nil, true,
		Map{{"z", []byte{3}}, {"a", []any{[]byte{1, 2}}}}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v", v)
	}
	enc, _ := Marshal(v)
	// 1e2 is an integer for JavaScript: written as 0x64.
	if !bytes.Contains(enc, []byte{0xcb, 0x40, 0x0c}) || !bytes.Contains(enc, []byte{0x64, 0xcf}) {
		t.Fatalf("numbers: %x", enc)
	}

	for _, bad := range []string{
		`[{"_placeholder":true,"num":2}]`,
		`[{"_placeholder":true,"num":-1}]`,
		`[{"_placeholder":true,"num":"0"}]`,
		`[{"_placeholder":true}]`,
	} {
		if _, err := FromJSON([]byte(bad), atts); !errors.Is(err, ErrIllegalAttachments) {
			t.Errorf("%s: %v", bad, err)
		}
	}
	for _, bad := range []string{`[1,`, `[1] 2`, `{"a":}`, ``} {
		if _, err := FromJSON([]byte(bad), nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	// Without attachments, placeholders stay objects.
	v, err = FromJSON([]byte(`{"_placeholder":true,"num":0}`), nil)
	if err != nil || !reflect.DeepEqual(v, Map{{"_placeholder", true}, {"num", int64(0)}}) {
		t.Fatalf("got %#v, %v", v, err)
	}
}

func TestToJSON(t *testing.T) {
	text, atts, err := ToJSON([]any{"ev", int64(-1), uint64(math.MaxUint64), 0.5, math.NaN(), "<a&b>\"\n\x01\u2028", []byte{9},
		Map{{"k", []byte{8}}, {"u", Undefined{}}, {"n", nil}}, Undefined{}, time.Date(2026, 11, 26, 21, 50, 18, 531e6, time.UTC),
		[]string{"x"}, 1e21})
	if err != nil {
		t.Fatal(err)
	}
	want := `["ev",-1,18446744073709551615,0.5,null,"<a&b>\"\n\u0001\u2028",{"_placeholder":true,"num":0},{"k":{"_placeholder":true,"num":1},"n":null},null,"2026-11-26T21:50:18.531Z",["x"],1e+21]`
	if string(text) != want {
		t.Fatalf("got  %s\nwant %s", text, want)
	}
	if !reflect.DeepEqual(atts, [][]byte{{9}, {8}}) {
		t.Fatalf("attachments %v", atts)
	}
	// Invalid UTF-8 is replaced.
	if text, _, _ := ToJSON("a\xffb"); string(text) != `"a\ufffdb"` {
		t.Fatalf("invalid UTF-8: %s", text)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	in := `["chat",{"user":"ann","n":3,"f":-0.25,"tags":["a","b"],"bin":{"_placeholder":true,"num":0}},{"_placeholder":true,"num":1}]`
	atts := [][]byte{{1, 2, 3}, {}}
	v, err := FromJSON([]byte(in), atts)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	text, gotAtts, err := ToJSON(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(text) != in || !reflect.DeepEqual(gotAtts, atts) {
		t.Fatalf("got %s %v", text, gotAtts)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, v := range vectors {
		b, _ := hex.DecodeString(strings.Join(strings.Fields(v.hex), ""))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			return
		}
		enc, err := Marshal(v)
		if err != nil {
			t.Fatalf("decoded %#v but cannot encode it: %v", v, err)
		}
		if _, err := Unmarshal(enc); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		ToJSON(v)
	})
}

package msgpack

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally/internal/parser"
)

// Vectors written by notepack.io 2.2.0 (socket.io-msgpack-parser 3.0.2's
// codec) for the JavaScript packets named.
var nodeVectors = []struct {
	name, js, hex string
	want          parser.Packet
}{
	{"readme", `{type: 2, nsp: '/', data: ['hello', 'you']}`,
		"83a47479706502a36e7370a12fa46461746192a568656c6c6fa3796f75",
		parser.Packet{Type: parser.Event, Namespace: "/", ID: parser.NoID, Data: []byte(`["hello","you"]`)}},
	{"event", `{type: 2, data: ['greetings', 'Hey!', {ms: 'jane'}, Buffer.from([4,3,2,1])], nsp: '/'}`,
		"83a47479706502a46461746194a96772656574696e6773a44865792181a26d73a46a616e65c40404030201a36e7370a12f",
		parser.Packet{Type: parser.BinaryEvent, Namespace: "/", ID: parser.NoID,
			Data:        []byte(`["greetings","Hey!",{"ms":"jane"},{"_placeholder":true,"num":0}]`),
			Attachments: [][]byte{{4, 3, 2, 1}}}},
	{"ack", `{type: 3, data: [1, -1, 200, -200, 70000, -70000, 2**32, -(2**33), 1.5, true, false, null, 'é'], nsp: '/admin', id: 7}`,
		"84a47479706503a4646174619d01ffccc8d1ff38ce00011170d2fffeee90cf0000000100000000d3fffffffe00000000cb3ff8000000000000c3c2c0a2c3a9a36e7370a62f61646d696ea2696407",
		parser.Packet{Type: parser.Ack, Namespace: "/admin", ID: 7,
			Data: []byte(`[1,-1,200,-200,70000,-70000,4294967296,-8589934592,1.5,true,false,null,"é"]`)}},
	{"client", `{type: 2, data: ['salutations', 'Hello!', {mr: 'john'}, Uint8Array.from([1,2,3,4])], options: {compress: true}, nsp: '/'}`,
		"84a47479706502a46461746194ab73616c75746174696f6e73a648656c6c6f2181a26d72a46a6f686ec7040001020304a76f7074696f6e7381a8636f6d7072657373c3a36e7370a12f",
		parser.Packet{Type: parser.BinaryEvent, Namespace: "/", ID: parser.NoID,
			Data:        []byte(`["salutations","Hello!",{"mr":"john"},{"_placeholder":true,"num":0}]`),
			Attachments: [][]byte{{1, 2, 3, 4}}}},
	{"connect", `{type: 0, data: undefined, nsp: '/'}`,
		"83a47479706500a464617461d40000a36e7370a12f",
		parser.Packet{Type: parser.Connect, Namespace: "/", ID: parser.NoID}},
	{"date", `{type: 2, data: ['d', new Date(Date.UTC(2024,0,2,3,4,5,678)), undefined, {u: undefined, k: 1}], nsp: '/'}`,
		"83a47479706502a46461746194a164d7000000018cc820db2ed4000082a175d40000a16b01a36e7370a12f",
		parser.Packet{Type: parser.Event, Namespace: "/", ID: parser.NoID,
			Data: []byte(`["d","2024-01-02T03:04:05.678Z",null,{"k":1}]`)}},
	{"connerr", `{type: 4, data: {message: 'not authorized', data: {code: 42}}, nsp: '/private'}`,
		"83a47479706504a46461746182a76d657373616765ae6e6f7420617574686f72697a6564a46461746181a4636f64652aa36e7370a82f70726976617465",
		parser.Packet{Type: parser.ConnectError, Namespace: "/private", ID: parser.NoID,
			Data: []byte(`{"message":"not authorized","data":{"code":42}}`)}},
	{"big", `{type: 2, data: ['b', new Array(20).fill(1), {k0: 0, …, k16: 16}], nsp: '/'}`,
		"83a47479706502a46461746193a162dc00140101010101010101010101010101010101010101de0011a26b3000a26b3101a26b3202a26b3303a26b3404a26b3505a26b3606a26b3707a26b3808a26b3909a36b31300aa36b31310ba36b31320ca36b31330da36b31340ea36b31350fa36b313610a36e7370a12f",
		parser.Packet{Type: parser.Event, Namespace: "/", ID: parser.NoID,
			Data: []byte(`["b",[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k10":10,"k11":11,"k12":12,"k13":13,"k14":14,"k15":15,"k16":16}]`)}},
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func samePacket(t *testing.T, what string, got *parser.Packet, want parser.Packet) {
	t.Helper()
	if got.Type != want.Type || got.Namespace != want.Namespace || got.ID != want.ID ||
		!bytes.Equal(got.Data, want.Data) || !reflect.DeepEqual(got.Attachments, want.Attachments) {
		t.Errorf("%s:\n got %v %q id %d %s %x\nwant %v %q id %d %s %x", what,
			got.Type, got.Namespace, got.ID, got.Data, got.Attachments,
			want.Type, want.Namespace, want.ID, want.Data, want.Attachments)
	}
}

func TestDecodeNodeVectors(t *testing.T) {
	for _, v := range nodeVectors {
		p, err := Decode(mustHex(t, v.hex))
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		samePacket(t, v.name, p, v.want)
	}
}

// Rally writes what Node's server writes for the same packet (in the key
// order of its broadcasts: type, data, nsp, id).
func TestEncodeAsNode(t *testing.T) {
	for _, name := range []string{"event", "ack", "connerr", "big"} {
		for _, v := range nodeVectors {
			if v.name != name {
				continue
			}
			got, err := Encode(nil, &v.want)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if want := mustHex(t, v.hex); !bytes.Equal(got, want) {
				t.Errorf("%s:\n got %x\nwant %x", name, got, want)
			}
		}
	}
}

func TestRoundTrip(t *testing.T) {
	packets := []parser.Packet{
		{Type: parser.Connect, Namespace: "/", ID: parser.NoID},
		{Type: parser.Connect, Namespace: "/admin", ID: parser.NoID, Data: []byte(`{"token":"x","n":[1,2.5,-3e-7,1e21]}`)},
		{Type: parser.Disconnect, Namespace: "/", ID: parser.NoID},
		{Type: parser.ConnectError, Namespace: "/", ID: parser.NoID, Data: []byte(`"nope"`)},
		{Type: parser.Event, Namespace: "/", ID: 12, Data: []byte(`["e\u00e9\n\"\\",{"a":{"b":[[],{}]}},"\u2028x\ud83d\ude00"]`)},
		{Type: parser.BinaryAck, Namespace: "/", ID: 0, Data: []byte(`[{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}]]`),
			Attachments: [][]byte{{1}, {}}},
		{Type: parser.Event, Namespace: "/", ID: parser.NoID, Data: []byte(`[1,"` + strings.Repeat("x", 70000) + `"]`)},
		{Type: parser.Event, Namespace: "/", ID: parser.NoID, Data: []byte(`["n",` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `]`)},
	}
	for _, p := range packets {
		b, err := Encode(nil, &p)
		if err != nil {
			t.Fatalf("%s: %v", p.String(), err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: decoding %x: %v", shorten(p.String()), b, err)
		}
		want := p
		want.Data = compact(t, p.Data)
		got.Data = compact(t, got.Data)
		samePacket(t, shorten(p.String()), got, want)
	}
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func compact(t testing.TB, j []byte) []byte {
	t.Helper()
	if len(j) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, j); err != nil {
		t.Fatalf("%s: %v", j, err)
	}
	// Go writes \u escapes for what JSON.stringify writes as is; compare
	// the decoded values' canonical form.
	var v any
	if err := json.Unmarshal(buf.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}

// m builds a MessagePack map of key/value pairs, values already encoded.
func m(kv ...any) []byte {
	b := msgp.AppendMapHeader(nil, uint32(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = msgp.AppendString(b, kv[i].(string))
		b = append(b, kv[i+1].([]byte)...)
	}
	return b
}

func arr(elems ...[]byte) []byte {
	b := msgp.AppendArrayHeader(nil, uint32(len(elems)))
	for _, e := range elems {
		b = append(b, e...)
	}
	return b
}

func str(s string) []byte { return msgp.AppendString(nil, s) }
func num(i int64) []byte  { return msgp.AppendInt64(nil, i) }

func TestDecodeExtensions(t *testing.T) {
	ext := func(typ int8, data []byte) []byte {
		b, err := msgp.AppendExtension(nil, &msgp.RawExtension{Type: typ, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p, err := Decode(m("type", num(2), "nsp", str("/"), "data",
		arr(str("x"), ext(5, []byte{1, 2, 3}), ext(-1, []byte{9, 9, 9, 9}), []byte{0xc7, 2, 0, 7, 8})))
	if err != nil {
		t.Fatal(err)
	}
	samePacket(t, "extensions", p, parser.Packet{Type: parser.BinaryEvent, Namespace: "/", ID: parser.NoID,
		Data:        []byte(`["x",[5,{"_placeholder":true,"num":0}],[-1,{"_placeholder":true,"num":1}],{"_placeholder":true,"num":2}]`),
		Attachments: [][]byte{{1, 2, 3}, {9, 9, 9, 9}, {7, 8}}})
}

// What socket.io-msgpack-parser refuses, what rally refuses with either
// parser, and malformed or oversized input: each is an error, quickly.
func TestDecodeRefuses(t *testing.T) {
	deep := func(n int) []byte {
		var b []byte
		for range n {
			b = msgp.AppendArrayHeader(b, 1)
		}
		return append(b, 0xc0)
	}
	ev := func(data []byte) []byte { return m("type", num(2), "nsp", str("/"), "data", data) }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"never used byte", []byte{0xc1}, ErrMalformed},
		{"not a map", arr(num(2)), parser.ErrUnknownType},
		{"truncated map", m("type", num(2), "nsp", str("/"))[:7], ErrMalformed},
		{"trailing bytes", append(ev(arr(str("a"))), 0xc0), ErrMalformed},
		{"type as string", m("type", str("2"), "nsp", str("/"), "data", arr(str("a"))), parser.ErrUnknownType},
		{"type 5", m("type", num(5), "nsp", str("/"), "data", arr(str("a"))), parser.ErrUnknownType},
		{"type 1.5", m("type", msgp.AppendFloat64(nil, 1.5), "nsp", str("/")), parser.ErrUnknownType},
		{"no type", m("nsp", str("/"), "data", arr(str("a"))), parser.ErrUnknownType},
		{"nsp number", m("type", num(2), "nsp", num(1), "data", arr(str("a"))), parser.ErrInvalidNamespace},
		{"no nsp", m("type", num(2), "data", arr(str("a"))), parser.ErrInvalidNamespace},
		{"long nsp", m("type", num(0), "nsp", str("/"+strings.Repeat("n", 300))), parser.ErrInvalidNamespace},
		{"event data a map", ev(m("a", num(1))), parser.ErrInvalidPayload},
		{"event without data", m("type", num(2), "nsp", str("/")), parser.ErrInvalidPayload},
		{"event name null", ev(arr([]byte{0xc0})), parser.ErrInvalidPayload},
		{"event name an array", ev(arr(arr(str("a")))), parser.ErrInvalidPayload},
		{"event name binary", ev(arr(msgp.AppendBytes(nil, []byte{1}))), parser.ErrInvalidPayload},
		{"reserved event name", ev(arr(str("disconnect"))), parser.ErrInvalidPayload},
		{"empty event", ev(arr()), parser.ErrInvalidPayload},
		{"connect data an array", m("type", num(0), "nsp", str("/"), "data", arr()), parser.ErrInvalidPayload},
		{"connect data binary", m("type", num(0), "nsp", str("/"), "data", msgp.AppendBytes(nil, []byte{1})), parser.ErrInvalidPayload},
		{"binary in connect data", m("type", num(0), "nsp", str("/"), "data", m("k", msgp.AppendBytes(nil, nil))), parser.ErrInvalidPayload},
		{"disconnect with data", m("type", num(1), "nsp", str("/"), "data", m()), parser.ErrInvalidPayload},
		{"id as string", m("type", num(2), "nsp", str("/"), "data", arr(str("a")), "id", str("1")), parser.ErrInvalidID},
		{"id 1.5", m("type", num(2), "nsp", str("/"), "data", arr(str("a")), "id", msgp.AppendFloat64(nil, 1.5)), parser.ErrInvalidID},
		{"negative id", m("type", num(2), "nsp", str("/"), "data", arr(str("a")), "id", num(-1)), parser.ErrInvalidID},
		{"id past 2^53", m("type", num(2), "nsp", str("/"), "data", arr(str("a")), "id", num(1<<53)), parser.ErrInvalidID},
		{"ack without id", m("type", num(3), "nsp", str("/"), "data", arr()), parser.ErrInvalidID},
		{"map key an array", ev(arr(str("a"), append(msgp.AppendMapHeader(nil, 1), append(arr(), num(1)...)...))), parser.ErrInvalidPayload},
		{"too deep", ev(arr(str("a"), deep(MaxDepth+1))), ErrMalformed},
		{"huge array header", ev(append([]byte{0xdd, 0xff, 0xff, 0xff, 0xff}, 0xc0)), ErrMalformed},
		{"huge map header", ev(arr(str("a"), []byte{0xdf, 0xff, 0xff, 0xff, 0xff})), ErrMalformed},
		{"huge str header", ev(arr(str("a"), []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'x'})), ErrMalformed},
		{"huge ext header", ev(arr(str("a"), []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 0, 1})), ErrMalformed},
		{"too many binaries", ev(arr(append([][]byte{str("a")}, bytes.Split(bytes.Repeat([]byte{0xc4, 0, '|'}, MaxBinaries+1), []byte{'|'})[:MaxBinaries+1]...)...)), parser.ErrTooManyAttach},
	}
	for _, c := range cases {
		p, err := Decode(c.in)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, %v; want %v", c.name, p, err, c.want)
		}
	}
	if _, err := Codec.Decode(nil, []byte("42[\"a\"]"), false); err == nil {
		t.Error("a text message decoded")
	}
}

package msgpack

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tinylib/msgp/msgp"

	"github.com/rallyhq/rally/internal/fuzzseed"
	"github.com/rallyhq/rally/internal/parser"
)

// FuzzDecode feeds arbitrary messages to the decoder: it must return a
// packet or an error, within the limits, and a packet it returns must
// encode, and decode again to the same packet. The seeds are Node's
// vectors and the refused inputs of the tests; they are also kept under
// testdata/fuzz/FuzzDecode (rewrite them with
// RALLY_WRITE_FUZZ_SEEDS=1 go test -run Fuzz ./internal/parser/msgpack).
func FuzzDecode(f *testing.F) {
	for _, v := range nodeVectors {
		fuzzseed.Add(f, v.name, mustHex(f, v.hex))
	}
	ev := func(data []byte) []byte { return m("type", num(2), "nsp", str("/"), "data", data, "id", num(3)) }
	fuzzseed.Add(f, "extensions", ev(arr(str("x"), []byte{0xd5, 5, 1, 2}, []byte{0xc7, 2, 0, 7, 8}, []byte{0xd6, 0xff, 0, 0, 0, 1})))
	fuzzseed.Add(f, "keys", ev(arr(str("x"), []byte{0x84, 0x01, 0xc0, 0xc0, 0xc0, 0xc3, 0xc2, 0xcb, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xc0})))
	fuzzseed.Add(f, "floats", ev(arr(str("x"), msgp.AppendFloat32(nil, 0.1), msgp.AppendFloat64(nil, 1e300), []byte{0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0})))
	fuzzseed.Add(f, "deep", ev(arr(str("x"), bytes.Repeat([]byte{0x91}, 50))))
	fuzzseed.Add(f, "huge header", ev([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0}))
	fuzzseed.Add(f, "ack binary", m("type", num(3), "nsp", str("/a"), "id", num(0), "data", arr(msgp.AppendBytes(nil, []byte{1}), m("b", msgp.AppendBytes(nil, nil)))))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Decode(data)
		if err != nil {
			return
		}
		if err := parser.Validate(p); err != nil {
			t.Fatalf("decoded an invalid packet %s: %v", p, err)
		}
		b, err := Encode(nil, p)
		if err != nil {
			t.Fatalf("packet %s does not encode: %v", p, err)
		}
		q, err := Decode(b)
		if err != nil {
			t.Fatalf("packet %s encoded as %x does not decode: %v", p, b, err)
		}
		if q.Type != p.Type || q.Namespace != p.Namespace || q.ID != p.ID || !reflect.DeepEqual(q.Attachments, p.Attachments) ||
			!sameJSON(p.Data, q.Data) {
			t.Fatalf("round trip changed the packet:\n%s %x\n%s %x", p, p.Attachments, q, q.Attachments)
		}
	})
}

// sameJSON reports whether a and b hold the same JSON value (numbers
// compared as written: the round trip keeps integers as integers).
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var va, vb any
	da, db := json.NewDecoder(bytes.NewReader(a)), json.NewDecoder(bytes.NewReader(b))
	da.UseNumber()
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(normalize(va), normalize(vb))
}

// normalize turns json.Numbers into float64, so that 1e21 and
// 1000000000000000000000 compare equal.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = normalize(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = normalize(v[k])
		}
	}
	return v
}

package wsclient

import (
	"reflect"
	"testing"

	"github.com/tinylib/msgp/msgp"
)

func TestMsgpackEvent(t *testing.T) {
	arg := msgp.AppendMapHeader(nil, 1)
	arg = msgp.AppendString(arg, "n")
	arg = msgp.AppendInt64(arg, 20)
	for _, id := range []int64{-1, 7} {
		b := AppendMsgpackEvent(nil, id, "blast", arg)
		v, rest, err := msgp.ReadIntfBytes(b)
		if err != nil || len(rest) != 0 {
			t.Fatalf("id %d: % x: %v, %d bytes left", id, b, err, len(rest))
		}
		want := map[string]any{
			"type": int64(2),
			"data": []any{"blast", map[string]any{"n": int64(20)}},
			"nsp":  "/",
		}
		if id >= 0 {
			want["id"] = id
		}
		if !reflect.DeepEqual(v, want) {
			t.Errorf("id %d: decoded %#v, want %#v", id, v, want)
		}
		p, err := DecodePacket(b)
		if err != nil || p.Type != PacketEvent || p.ID != id || string(p.NSP) != "/" {
			t.Errorf("id %d: DecodePacket = %+v, %v", id, p, err)
		}
		name, args, err := MsgpackEventName(p.Data)
		if err != nil || string(name) != "blast" {
			t.Errorf("id %d: MsgpackEventName = %q, %v", id, name, err)
		}
		if n, ok := MsgpackIntField(args, "n"); !ok || n != 20 {
			t.Errorf("id %d: n = %d, %v", id, n, ok)
		}
	}
	c := appendMsgpackConnect(nil)
	if p, err := DecodePacket(c); err != nil || p.Type != PacketConnect || p.Data != nil || p.ID != -1 {
		t.Errorf("CONNECT: %+v, %v", p, err)
	}
}

// tick is a "tick" broadcast as Node's server writes it: the timestamp
// as a uint64, the type as a positive fixint, keys in its order.
func tick(t uint64) []byte {
	b := msgp.AppendMapHeader(nil, 3)
	b = msgp.AppendString(b, "type")
	b = msgp.AppendUint64(b, PacketEvent)
	b = msgp.AppendString(b, "data")
	b = msgp.AppendArrayHeader(b, 2)
	b = msgp.AppendString(b, "tick")
	b = msgp.AppendMapHeader(b, 3)
	b = msgp.AppendString(b, "t")
	b = msgp.AppendUint64(b, t)
	b = msgp.AppendString(b, "i")
	b = msgp.AppendFloat64(b, 3)
	b = msgp.AppendString(b, "p")
	b = msgp.AppendString(b, "xx")
	b = msgp.AppendString(b, "nsp")
	return msgp.AppendString(b, "/")
}

func TestMsgpackTick(t *testing.T) {
	m := tick(1700000000123456)
	p, err := DecodePacket(m)
	if err != nil || p.Type != PacketEvent || p.ID != -1 {
		t.Fatalf("DecodePacket = %+v, %v", p, err)
	}
	name, args, err := MsgpackEventName(p.Data)
	if err != nil || string(name) != "tick" {
		t.Fatalf("MsgpackEventName = %q, %v", name, err)
	}
	if v, ok := MsgpackIntField(args, "t"); !ok || v != 1700000000123456 {
		t.Errorf("t = %d, %v", v, ok)
	}
	if v, ok := MsgpackIntField(args, "i"); !ok || v != 3 {
		t.Errorf("i (a float) = %d, %v", v, ok)
	}
	if _, ok := MsgpackIntField(args, "z"); ok {
		t.Error("found a missing key")
	}
	for _, bad := range [][]byte{nil, {0x90}, m[:len(m)-3], msgp.AppendString(nil, "42")} {
		if _, err := DecodePacket(bad); err == nil {
			t.Errorf("DecodePacket(% x) succeeded", bad)
		}
	}
}

func TestMsgpackAllocs(t *testing.T) {
	m := tick(1700000000123456)
	arg := msgp.AppendMapHeader(nil, 1)
	arg = msgp.AppendString(arg, "t")
	arg = msgp.AppendInt64(arg, 1)
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		p, err := DecodePacket(m)
		if err != nil {
			t.Fatal(err)
		}
		_, args, _ := MsgpackEventName(p.Data)
		MsgpackIntField(args, "t")
		buf = AppendMsgpackEvent(buf[:0], 12, "echo", arg)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per decode and encode", allocs)
	}
}

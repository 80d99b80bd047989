package sharded

import (
	"bytes"
	"testing"

	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

func broadcastTo(rooms []string, withAck bool) *cluster.Message {
	data := msgpack.Map{{Key: "packet", Value: msgpack.Map{{Key: "type", Value: 2}, {Key: "data", Value: []any{"ev"}}}}}
	if withAck {
		data = append(data, msgpack.Entry{Key: "requestId", Value: "r1"})
	}
	data = append(data, msgpack.Entry{Key: "opts", Value: msgpack.Map{{Key: "rooms", Value: rooms}, {Key: "except", Value: []string{}}}})
	return &cluster.Message{UID: "u1", NSP: "/", Type: cluster.Broadcast, Data: data}
}

// channelOf follows Node's computeChannel in every mode.
func TestChannelOf(t *testing.T) {
	sid := "abcdefghijklmnopqrst" // 20 characters: a socket id
	for _, c := range []struct {
		mode    SubscriptionMode
		rooms   []string
		withAck bool
		want    string
	}{
		{Static, []string{"r"}, false, "p#/#"},
		{Dynamic, []string{"r"}, false, "p#/#r#"},
		{Dynamic, []string{sid}, false, "p#/#"},
		{Dynamic, []string{"r"}, true, "p#/#"},
		{Dynamic, []string{"r", "s"}, false, "p#/#"},
		{Dynamic, nil, false, "p#/#"},
		{DynamicPrivate, []string{sid}, false, "p#/#" + sid + "#"},
		{DynamicPrivate, []string{"r"}, true, "p#/#"},
	} {
		tr := &transport{a: &adapter{n: &Node{opts: Options{SubscriptionMode: c.mode}}, channel: "p#/#"}}
		if got := tr.channelOf(broadcastTo(c.rooms, c.withAck)); got != c.want {
			t.Errorf("%s %v ack=%v: %q, want %q", c.mode, c.rooms, c.withAck, got, c.want)
		}
	}
}

// encode writes JSON, unless the message carries binary values; both
// decode back.
func TestEncode(t *testing.T) {
	m := broadcastTo([]string{"r"}, false)
	text, err := encode(m)
	if err != nil || text[0] != '{' {
		t.Fatalf("encode: %q %v", text, err)
	}
	want := `{"type":3,"data":{"packet":{"type":2,"data":["ev"]},"opts":{"rooms":["r"],"except":[]}},"uid":"u1","nsp":"/"}`
	if string(text) != want {
		t.Fatalf("JSON %s, want %s", text, want)
	}
	m.Data[0].Value.(msgpack.Map)[1].Value = []any{"ev", []byte{1, 2}}
	bin, err := encode(m)
	if err != nil || bin[0] == '{' {
		t.Fatalf("encode with binary: %q %v", bin, err)
	}
	for _, payload := range [][]byte{text, bin} {
		back, err := cluster.Decode(payload)
		if err != nil || back.UID != "u1" || back.Type != cluster.Broadcast {
			t.Fatalf("decode %q: %+v %v", payload, back, err)
		}
	}
	back, _ := cluster.Decode(bin)
	p, _ := back.Data.Get("packet")
	d, _ := p.(msgpack.Map).Get("data")
	if b, _ := d.([]any)[1].([]byte); !bytes.Equal(b, []byte{1, 2}) {
		t.Fatalf("binary decoded as %v", d)
	}
}

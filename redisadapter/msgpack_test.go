package redisadapter_test

import (
	"bytes"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/msgpackparser"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/sockettest"
)

// TestMsgpackHubInCluster puts a hub with the msgpack parser and one with
// the default parser on one Redis: adapters carry packets in their own
// format, so clients of either parser get the other server's broadcasts,
// binary included, each in its own framing.
func TestMsgpackHubInCluster(t *testing.T) {
	r := startRedis(t)
	var members []*member
	for i, parser := range []rally.Parser{msgpackparser.Parser{}, nil} {
		m := &member{i: i, rdb: r.Client(t)}
		lg, rec := newLogRecorder(t)
		m.logs = rec
		m.node = redisadapter.New(m.rdb, &redisadapter.Options{Logger: lg})
		m.hub = rally.NewHub(&rally.Options{Adapter: m.node.Adapter, Parser: parser})
		m.hub.On("join", func(s *rally.Socket, rooms ...string) { s.Join(rooms...) })
		m.hub.On("shout", func(s *rally.Socket, text string, data []byte) { s.To("room").Emit("heard", text, data) })
		m.srv = sockettest.NewServer(t, m.hub)
		members = append(members, m)
	}
	waitCluster(t, members, 2, "/")

	packed := members[0].dial(t, &client.Options{Parser: msgpackparser.Parser{}})
	plain := members[1].dial(t, nil)
	packed.join(t, "room")
	plain.join(t, "room")

	packed.c.Emit("shout", "from msgpack", []byte{1, 2, 3})
	plain.c.Emit("shout", "from text", []byte{4, 5})
	for _, tc := range []struct {
		p    *peer
		text string
		data []byte
	}{{plain, "from msgpack", []byte{1, 2, 3}}, {packed, "from text", []byte{4, 5}}} {
		var text string
		var data []byte
		tc.p.ev.Expect(t, "heard", &text, &data)
		if text != tc.text || !bytes.Equal(data, tc.data) {
			t.Errorf("heard %q %v, want %q %v", text, data, tc.text, tc.data)
		}
	}
}

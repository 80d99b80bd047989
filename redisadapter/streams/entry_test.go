package streams

import (
	"bytes"
	"testing"

	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

func TestEntryRoundTrip(t *testing.T) {
	for _, m := range []*cluster.Message{
		{UID: "u", NSP: "/", Type: cluster.Broadcast, Data: msgpack.Map{{Key: "packet", Value: msgpack.Map{{Key: "type", Value: int64(2)}, {Key: "data", Value: []any{"ev", "x"}}}}}},
		{UID: "u", NSP: "/a", Type: cluster.Broadcast, Data: msgpack.Map{{Key: "packet", Value: msgpack.Map{{Key: "data", Value: []any{"ev", []byte{1, 2}}}}}}},
		{UID: "u", NSP: "/", Type: cluster.Heartbeat},
	} {
		values, err := encodeEntry(m)
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]any{}
		for i := 0; i < len(values); i += 2 {
			fields[values[i]] = values[i+1]
		}
		back, err := decodeEntry(fields)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := msgpack.Marshal(m.Data)
		b, _ := msgpack.Marshal(back.Data)
		if back.UID != m.UID || back.NSP != m.NSP || back.Type != m.Type || !bytes.Equal(a, b) {
			t.Errorf("%+v came back as %+v", m, back)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	m := &cluster.Message{UID: "u", NSP: "/", Type: cluster.FetchSocketsResponse, Data: msgpack.Map{{Key: "requestId", Value: "r"}}}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := cluster.Unmarshal(b)
	if err != nil || back.UID != "u" || back.Type != cluster.FetchSocketsResponse || back.RequestID() != "r" {
		t.Fatalf("%+v %v", back, err)
	}
	for _, bad := range [][]byte{nil, {0x90}, {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x'}} {
		if _, err := cluster.Unmarshal(bad); err == nil {
			t.Errorf("Unmarshal(%x): no error", bad)
		}
	}
}

func TestRestoreHelpers(t *testing.T) {
	if got := nextOffset("1700000000000-9"); got != "1700000000000-10" {
		t.Errorf("nextOffset: %s", got)
	}
	for _, c := range []struct {
		session, rooms, except []string
		want                   bool
	}{
		{[]string{"s", "r1"}, nil, nil, true},
		{[]string{"s", "r1"}, []string{"r1"}, nil, true},
		{[]string{"s", "r1"}, []string{"r2"}, nil, false},
		{[]string{"s", "r1"}, nil, []string{"r1"}, false},
		{[]string{"s", "r1"}, []string{"s"}, []string{"r1"}, false},
	} {
		if got := reaches(c.session, c.rooms, c.except); got != c.want {
			t.Errorf("reaches(%v, %v, %v) = %v", c.session, c.rooms, c.except, got)
		}
	}
	for _, o := range []string{"1-0", "1700000000000-12"} {
		if !offsetPattern.MatchString(o) {
			t.Errorf("%s refused", o)
		}
	}
	for _, o := range []string{"", "1", "a-1", "1-1-1", "12"} {
		if offsetPattern.MatchString(o) {
			t.Errorf("%s accepted", o)
		}
	}
}

package redisadapter_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/sockettest"
)

// startBareMixed is startMixed without the rally hub's connection handler:
// its sockets never call SetData.
func startBareMixed(t *testing.T) *mixed {
	t.Helper()
	nodetest.Node(t)
	r := startRedis(t)
	ms := newCluster(t, r, 1, &clusterOptions{adapter: redisadapter.Options{RequestsTimeout: 2 * time.Second}})
	x := &mixed{t: t, redis: r, rally: ms[0]}
	x.node = nodetest.Start(t, "cluster.js", nodetest.Options{
		Env: []string{"REDIS_URL=" + r.URL(), "RALLY_URL=" + x.rally.srv.URL, "REQUESTS_TIMEOUT=2000"},
	})
	var info struct {
		Port int
		IDs  map[string]string
	}
	if err := x.node.WaitEvent(60*time.Second, "ready", nil).Decode(&info); err != nil {
		t.Fatal(err)
	}
	x.ids = info.IDs
	x.nodeURL = fmt.Sprintf("http://127.0.0.1:%d", info.Port)

	x.goOnRally = x.rally.dial(t, nil)
	c := client.New(x.nodeURL, nil)
	t.Cleanup(func() { c.Close() })
	x.goOnNode = &peer{c: c, ev: sockettest.Record(c)}
	if err := c.Connect(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	x.ids["goOnRally"], x.ids["goOnNode"] = x.goOnRally.c.ID(), c.ID()
	waitCluster(t, ms, 2, "/")
	return x
}

// A Node socket fetched on rally has the Host its client connected to;
// a rally socket fetched on Node has headers.host, and data {} when it
// never called SetData, like a Node socket.
func TestMixedFetchSocketsHostAndData(t *testing.T) {
	x := startBareMixed(t)
	rallyHost := strings.TrimPrefix(x.rally.srv.URL, "http://")
	nodeHost := strings.TrimPrefix(x.nodeURL, "http://")

	socks, err := x.rally.hub.All().FetchSockets(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		x.ids["nodeOnNode"]: nodeHost, x.ids["goOnNode"]: nodeHost,
		x.ids["nodeOnRally"]: rallyHost, x.ids["goOnRally"]: rallyHost,
	}
	if len(socks) != len(want) {
		t.Fatalf("rally fetched %d sockets, want %d", len(socks), len(want))
	}
	for _, s := range socks {
		if s.Handshake.Host != want[s.ID] {
			t.Errorf("rally's fetch: socket %s has Host %q, want %q", s.ID, s.Handshake.Host, want[s.ID])
		}
	}

	l := x.do("fetch", nil)
	var res struct {
		Sockets []struct {
			ID        string
			Data      json.RawMessage
			Handshake struct{ Headers map[string]any }
		}
	}
	if err := l.Decode(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Sockets) != len(want) {
		t.Fatalf("Node fetched %d sockets, want %d: %s", len(res.Sockets), len(want), l.Raw)
	}
	for _, s := range res.Sockets {
		if host := s.Handshake.Headers["host"]; host != want[s.ID] {
			t.Errorf("Node's fetch: socket %s has headers.host %v, want %q", s.ID, host, want[s.ID])
		}
		// Node's sockets start with data {} (cluster.js then sets it);
		// rally's must reach Node alike.
		if want[s.ID] == rallyHost && string(s.Data) != "{}" {
			t.Errorf("Node's fetch: socket %s has data %s, want {}", s.ID, s.Data)
		}
	}
}

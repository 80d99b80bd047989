package metrics_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/metrics"
	"github.com/rallyhq/rally/sockettest"
)

// reporting is an adapter that reports a publish for each broadcast, as
// one that spans servers does, and keeps the LocalAdapter of each
// namespace so that the test can report the rest.
type reporting struct {
	*rally.LocalAdapter
}

func (a reporting) Broadcast(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions) error {
	a.Report(rally.AdapterEvent{Kind: rally.AdapterPublish})
	return a.LocalAdapter.Broadcast(ctx, p, opts)
}

// locals records the LocalAdapter of each namespace.
type locals struct {
	mu sync.Mutex
	m  map[string]*rally.LocalAdapter
}

func (l *locals) adapter(local *rally.LocalAdapter) rally.Adapter {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m[local.Namespace().Name()] = local
	return reporting{local}
}

func (l *locals) get(name string) *rally.LocalAdapter {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.m[name]
}

// TestMetrics drives a hub with real clients over both transports, then
// checks every metric of a scrape of /metrics against what was done.
func TestMetrics(t *testing.T) {
	adapters := &locals{m: map[string]*rally.LocalAdapter{}}
	hub := rally.NewHub(&rally.Options{MaxQueuedBytes: 64 << 10, Adapter: adapters.adapter})
	hub.Of("/stall")
	hub.OfRegexp(regexp.MustCompile(`^/room-\d+$`))
	col := metrics.New(hub, &metrics.Options{ConstLabels: map[string]string{"server": "test"}})

	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	// ask makes the server emit event to the asking socket with an ack,
	// and answers whether the client answered within 300 ms.
	hub.On("ask", func(s *rally.Socket, event string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := s.EmitWithAck(ctx, event)
		return err == nil
	})
	hub.On("kick", func(s *rally.Socket) { s.Disconnect(true) })
	srv := serve(t, hub, col)
	ts := &sockettest.Server{Server: srv.Server, Hub: hub}

	ws := &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true}
	polling := &client.Options{Transports: []string{client.TransportPolling}, DisableReconnection: true}
	both := &client.Options{DisableReconnection: true}
	a, b := ts.Socket(t, "/", ws), ts.Socket(t, "/", ws)
	p, u := ts.Socket(t, "/", polling), ts.Socket(t, "/", both)
	inRoom := []*client.Socket{a, b, p}
	var news []*sockettest.Recorder
	for _, c := range inRoom {
		news = append(news, sockettest.Record(c))
	}
	for _, c := range []*client.Socket{a, b, p, u} {
		c.On("ping me", func() string { return "pong" })
		ts.Connect(t, c)
	}
	srv.waitValue(t, "rally_upgrades_total", labels{}, 1) // u, from polling to websocket
	ts.Dial(t, "/room-1", ws)
	ts.Dial(t, "/room-2", ws)

	ctx := ctx10s(t)
	for _, c := range inRoom {
		if _, err := c.EmitWithAck(ctx, "join", "r"); err != nil {
			t.Fatal(err)
		}
	}
	const k = 5
	for i := range k {
		if err := hub.To("r").Emit("news", i); err != nil {
			t.Fatal(err)
		}
	}
	for _, rec := range news {
		for i := range k {
			var n int
			rec.Expect(t, "news", &n)
			if n != i {
				t.Fatalf("news %d arrived as %d", i, n)
			}
		}
	}
	if _, err := hub.To("r").EmitWithAck(ctx, "ping me"); err != nil {
		t.Fatal(err)
	}
	for event, answered := range map[string]bool{"ping me": true, "unanswered": false} {
		reply, err := a.EmitWithAck(ctx, "ask", event)
		var got bool
		if err == nil {
			err = reply.Decode(&got)
		}
		if err != nil || got != answered {
			t.Fatalf("ask %q: %v %v, want %v", event, got, err, answered)
		}
	}

	// A polling session that never polls: the CONNECT reply stays queued,
	// so the volatile event sent to its room is dropped.
	raw := dialRawPoll(t, srv)
	raw.post(t, `42["join","v"]`)
	srv.waitValue(t, "rally_room_joins_total", labels{"namespace": "/"}, 4)
	if err := hub.To("v").Volatile().Emit("tick"); err != nil {
		t.Fatal(err)
	}
	srv.waitValue(t, "rally_volatile_dropped_total", labels{"namespace": "/"}, 1)

	for _, q := range []string{"EIO=4&transport=pigeon", "EIO=3&transport=polling"} {
		res, err := srv.Client().Get(srv.URL + "/socket.io/?" + q)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: status %d", q, res.StatusCode)
		}
	}

	// While everyone is connected: a, b, u (upgraded) and the two in
	// dynamic namespaces on websocket, p and raw on polling.
	mid := srv.scrape(t)
	mid.expect(t, map[string]map[string]float64{
		"rally_connections": {`transport="polling"`: 2, `transport="websocket"`: 5},
		"rally_sockets":     {`namespace="/"`: 5, `namespace="/(parent 1)"`: 2, `namespace="/stall"`: 0},
	})
	if q := mid.value(t, "rally_write_queue_bytes", labels{}); q < float64(len(`{"sid":"01234567890123456789"}`)) || q > 256 {
		t.Errorf("rally_write_queue_bytes = %v with one CONNECT reply queued", q)
	}
	if got := raw.poll(t); len(got) != 1 || !strings.HasPrefix(got[0], `40{"sid":"`) {
		t.Fatalf("raw poll: %q (the volatile event should be gone)", got)
	}
	srv.waitValue(t, "rally_write_queue_bytes", labels{}, 0)

	// A client that never reads, alone in /stall, until its queue is full.
	gone := make(chan string, 1)
	hub.Of("/stall").OnDisconnect(func(s *rally.Socket, reason string) { gone <- reason })
	dialStalled(t, srv, "/stall")
	payload := strings.Repeat("x", 8<<10)
	emits := 0
	var reason string
	for reason == "" {
		if emits == 2000 {
			t.Fatal("the client that does not read is still connected after 2000 emits of 8 KiB")
		}
		if err := hub.Of("/stall").Emit("big", payload); err != nil {
			t.Fatal(err)
		}
		emits++
		select {
		case reason = <-gone:
		default:
		}
	}
	if reason != rally.ReasonQueueFull {
		t.Fatalf("the stalled client left with %q", reason)
	}
	srv.waitValue(t, "rally_connections_closed_total", labels{"transport": "websocket", "reason": rally.ReasonQueueFull}, 1)

	// Two known disconnects: a leaves, b is kicked.
	a.Close()
	b.Emit("kick")
	srv.waitValue(t, "rally_socket_disconnects_total", labels{"namespace": "/", "reason": rally.ReasonClientNamespaceDisconnect}, 1)
	srv.waitValue(t, "rally_socket_disconnects_total", labels{"namespace": "/", "reason": rally.ReasonServerNamespaceDisconnect}, 1)
	// The client closed a's connection, the server b's (Disconnect(true)).
	srv.waitValue(t, "rally_connections_closed_total", labels{"transport": "websocket", "reason": rally.ReasonTransportClose}, 1)
	srv.waitValue(t, "rally_connections_closed_total", labels{"transport": "websocket", "reason": rally.ReasonForcedClose}, 1)

	local := adapters.get("/")
	for range 3 {
		local.Report(rally.AdapterEvent{Kind: rally.AdapterReceive})
	}
	local.Report(rally.AdapterEvent{Kind: rally.AdapterError, Err: errors.New("lost")})
	local.Report(rally.AdapterEvent{Kind: rally.AdapterTimeout, Err: context.DeadlineExceeded})

	f := srv.scrape(t)
	f.expect(t, map[string]map[string]float64{
		"rally_connections":      {`transport="polling"`: 2, `transport="websocket"`: 3},
		"rally_handshakes_total": {`transport="websocket"`: 5, `transport="polling"`: 3},
		"rally_requests_refused_total": {
			`code="0",message="Transport unknown"`:            1,
			`code="5",message="Unsupported protocol version"`: 1,
		},
		"rally_upgrades_total": {``: 1},
		"rally_connections_closed_total": {
			`transport="websocket",reason="write queue full"`: 1,
			`transport="websocket",reason="transport close"`:  1,
			`transport="websocket",reason="forced close"`:     1,
		},
		"rally_write_queue_bytes": {``: 0},
		"rally_namespaces":        {``: 4}, // /, /stall, /room-1, /room-2
		"rally_sockets":           {`namespace="/"`: 3, `namespace="/(parent 1)"`: 2, `namespace="/stall"`: 0},
		"rally_socket_connects_total": {
			`namespace="/"`: 5, `namespace="/(parent 1)"`: 2, `namespace="/stall"`: 1,
		},
		"rally_socket_disconnects_total": {
			`namespace="/",reason="client namespace disconnect"`: 1,
			`namespace="/",reason="server namespace disconnect"`: 1,
			`namespace="/stall",reason="write queue full"`:       1,
		},
		"rally_room_joins_total":  {`namespace="/"`: 4, `namespace="/stall"`: 0, `namespace="/(parent 1)"`: 0},
		"rally_room_leaves_total": {`namespace="/"`: 2}, // a and b left "r" at their disconnects
		// /: k to r, the ack to r, the volatile to v.
		"rally_broadcasts_total":           {`namespace="/"`: k + 2, `namespace="/stall"`: float64(emits)},
		"rally_broadcast_deliveries_total": {`namespace="/"`: 3*k + 3},
		"rally_volatile_dropped_total":     {`namespace="/"`: 1, `namespace="/stall"`: 0},
		// The publishes come from reporting.Broadcast, which acks bypass.
		"rally_adapter_published_total": {`namespace="/"`: k + 1, `namespace="/stall"`: float64(emits)},
		"rally_adapter_received_total":  {`namespace="/"`: 3, `namespace="/stall"`: 0},
		"rally_adapter_errors_total":    {`namespace="/"`: 1},
		"rally_adapter_timeouts_total":  {`namespace="/"`: 1},
	})

	// The stalled client took at least what its queue holds.
	stalled := f.value(t, "rally_broadcast_deliveries_total", labels{"namespace": "/stall"})
	if stalled < float64(64<<10)/float64(len(payload))-1 || stalled > float64(emits) {
		t.Errorf("the stalled client was sent %v of %d emits", stalled, emits)
	}
	// Out: the deliveries in / and 8 CONNECT replies at least.
	if sent := f.value(t, "rally_packets_sent_total", labels{}); sent < 3*k+3+8 {
		t.Errorf("rally_packets_sent_total = %v", sent)
	}
	// The queue was full: it held more than the limit less one emit.
	if bytes := f.value(t, "rally_sent_bytes_total", labels{}); bytes < float64(64<<10-len(payload)) {
		t.Errorf("rally_sent_bytes_total = %v, below what the stalled client's full queue held", bytes)
	}
	// In: 8 CONNECTs, 3 joins, 2 asks, raw's join, the kick, the acks of
	// 3 + 1 pings.
	if in := f.value(t, "rally_packets_received_total", labels{}); in < 8+3+2+1+1+4 {
		t.Errorf("rally_packets_received_total = %v", in)
	}
	if in := f.value(t, "rally_received_bytes_total", labels{}); in < float64(len(`2["ask","unanswered"]`)) {
		t.Errorf("rally_received_bytes_total = %v", in)
	}

	ok := f.histogram(t, "rally_ack_round_trip_seconds", labels{"namespace": "/", "outcome": "ok"})
	failed := f.histogram(t, "rally_ack_round_trip_seconds", labels{"namespace": "/", "outcome": "error"})
	if ok.GetSampleCount() != 2 || failed.GetSampleCount() != 1 {
		t.Errorf("ack round trips: %d ok, %d failed; want 2 and 1", ok.GetSampleCount(), failed.GetSampleCount())
	}
	if s := failed.GetSampleSum(); s < 0.3 || s > 5 {
		t.Errorf("the failed ack waited %vs, want its 300ms timeout", s)
	}
	for _, bucket := range failed.Bucket {
		if bucket.GetUpperBound() < 0.3 && bucket.GetCumulativeCount() != 0 {
			t.Errorf("the failed ack is counted in bucket le=%v", bucket.GetUpperBound())
		}
	}
	var bounds []float64
	for _, bucket := range ok.Bucket {
		if !math.IsInf(bucket.GetUpperBound(), 1) {
			bounds = append(bounds, bucket.GetUpperBound())
		}
	}
	if !slices.Equal(bounds, metrics.DefaultAckBuckets) {
		t.Errorf("buckets %v, want %v", bounds, metrics.DefaultAckBuckets)
	}

	// Every series of the collector carries the constant label.
	for name, fam := range f {
		if !strings.HasPrefix(name, "rally_") {
			continue
		}
		for _, m := range fam.Metric {
			found := false
			for _, lp := range m.Label {
				found = found || (lp.GetName() == "server" && lp.GetValue() == "test")
			}
			if !found {
				t.Errorf("%s%v lacks server=\"test\"", name, m.Label)
			}
		}
	}
	if f["go_goroutines"] == nil {
		t.Error("Handler serves no Go runtime metrics")
	}
}

package metrics_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/metrics"
	"github.com/rallyhq/rally/sockettest"
)

// A mapping that labels every child namespace apart is bounded by
// MaxNamespaces: the namespaces beyond it count as "other".
func TestNamespaceLabelBound(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.OfRegexp(regexp.MustCompile(`^/room-\d+$`))
	col := metrics.New(hub, &metrics.Options{
		MaxNamespaces:  2, // "/" and the first room
		NamespaceLabel: func(n *rally.Namespace) string { return n.Name() },
	})
	srv := serve(t, hub, col)
	ts := &sockettest.Server{Server: srv.Server, Hub: hub}
	for _, nsp := range []string{"/room-1", "/room-2", "/room-3", "/room-3"} {
		ts.Dial(t, nsp, &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true})
	}
	f := srv.scrape(t)
	f.expect(t, map[string]map[string]float64{
		"rally_socket_connects_total": {`namespace="/"`: 0, `namespace="/room-1"`: 1, `namespace="other"`: 3},
		"rally_sockets":               {`namespace="/"`: 0, `namespace="/room-1"`: 1, `namespace="other"`: 3},
	})
	if got := len(f.series("rally_socket_connects_total")); got != 3 {
		t.Errorf("%d namespace labels, want 3: %v", got, f.series("rally_socket_connects_total"))
	}
}

// NoNamespaceLabel counts every namespace together; Prefix renames the
// metrics.
func TestNoNamespaceLabel(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.Of("/admin")
	col := metrics.New(hub, &metrics.Options{Prefix: "chat", NoNamespaceLabel: true})
	srv := serve(t, hub, col)
	ts := &sockettest.Server{Server: srv.Server, Hub: hub}
	for _, nsp := range []string{"/", "/admin", "/admin"} {
		ts.Dial(t, nsp, &client.Options{Transports: []string{client.TransportWebSocket}, DisableReconnection: true})
	}
	if err := hub.Of("/admin").Emit("hello"); err != nil {
		t.Fatal(err)
	}
	f := srv.scrape(t)
	f.expect(t, map[string]map[string]float64{
		"chat_socket_connects_total":      {``: 3},
		"chat_sockets":                    {``: 3},
		"chat_broadcasts_total":           {``: 1},
		"chat_broadcast_deliveries_total": {``: 2},
		"chat_handshakes_total":           {`transport="websocket"`: 3},
	})
	for name := range f {
		if strings.HasPrefix(name, "rally_") {
			t.Errorf("%s: the prefix is chat", name)
		}
	}
}

// ConstLabels may not take the name of a metric's own label.
func TestConstLabelClash(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), `"reason"`) {
			t.Errorf("New recovered %v, want a panic naming the label", r)
		}
	}()
	metrics.New(rally.NewHub(nil), &metrics.Options{ConstLabels: prometheus.Labels{"reason": "x"}})
}

// Packets and bytes count Engine.IO messages, as a raw websocket client
// sees every one of them, each by its data without the Engine.IO type
// byte, both ways.
func TestPacketsAndBytes(t *testing.T) {
	hub := rally.NewHub(nil)
	hub.On("echo", func(s *rally.Socket, text string) string { return text })
	srv := serve(t, hub, metrics.New(hub, nil))
	ctx := ctx10s(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, open, err := c.Read(ctx); err != nil || open[0] != '0' {
		t.Fatalf("open: %q %v", open, err)
	}
	var in, inBytes, out, outBytes int
	exchange := func(msg, replyPrefix string) {
		t.Helper()
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		in++
		inBytes += len(msg) - 1
		_, reply, err := c.Read(ctx)
		if err != nil || !strings.HasPrefix(string(reply), replyPrefix) {
			t.Fatalf("after %q: %q %v", msg, reply, err)
		}
		out++
		outBytes += len(reply) - 1
	}
	exchange("40", `40{"sid":"`)
	exchange(`421["echo","hello"]`, `431["hello"]`)
	exchange(`422["echo","`+strings.Repeat("é", 100)+`"]`, `432["é`)

	srv.scrape(t).expect(t, map[string]map[string]float64{
		"rally_packets_received_total": {``: float64(in)},
		"rally_received_bytes_total":   {``: float64(inBytes)},
		"rally_packets_sent_total":     {``: float64(out)},
		"rally_sent_bytes_total":       {``: float64(outBytes)},
	})
}

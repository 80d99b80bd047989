package main

import (
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/stdexample/chat"
	"github.com/rallyhq/rally/stdexample/chat/chattest"
)

// scrapeMetrics fetches GET /metrics and parses it with Prometheus' text
// parser.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", res.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the counter or gauge name whose labels
// include want, or -1 when there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
	for _, m := range fam.Metric {
		matched := 0
		for _, lp := range m.Label {
			if v, ok := want[lp.GetName()]; ok && v == lp.GetValue() {
				matched++
			}
		}
		if matched == len(want) && len(m.Label) == len(want) {
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return -1
}

// waitMetric scrapes until the metric has the value want.
func waitMetric(t *testing.T, url, name string, labels map[string]string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metricValue(scrapeMetrics(t, url), name, labels)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v after 10s, want %v", name, labels, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMetrics chats through the app, then checks what GET /metrics says
// of it.
func TestMetrics(t *testing.T) {
	withMetricsServer := func(cfg chat.Config) (http.Handler, *rally.Hub) {
		handler, hub := newServer(cfg)
		return chat.WithMetrics(handler, hub), hub
	}
	srv, _ := chattest.StartApp(t, withMetricsServer, chat.Config{Token: testToken})
	defer http.DefaultClient.CloseIdleConnections()
	alice := chattest.Connect(t, srv.URL, &client.Options{Transports: []string{client.TransportWebSocket},
		Auth: map[string]string{"nickname": "alice"}, DisableReconnection: true})
	bob := chattest.Connect(t, srv.URL, &client.Options{Transports: []string{client.TransportPolling},
		Auth: map[string]string{"nickname": "bob"}, DisableReconnection: true})

	alice.MustAck(nil, "join", "lobby") // the user list to alice
	bob.MustAck(nil, "join", "lobby")   // the user list to both
	alice.Wait("users", usersAre("lobby", "alice", "bob"))
	alice.MustAck(nil, "chat message", "lobby", "hi bob") // to bob
	bob.Wait("chat message", nil)

	mid := scrapeMetrics(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rally_connections", map[string]string{"transport": "websocket"}, 1},
		{"rally_connections", map[string]string{"transport": "polling"}, 1},
		{"rally_sockets", map[string]string{"namespace": "/"}, 2},
	} {
		if got := metricValue(mid, c.name, c.labels); got != c.want {
			t.Errorf("while both chat: %s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}

	// A refused request, and bob's departure: the user list to alice.
	res, err := http.Get(srv.URL + "/socket.io/?EIO=4&transport=carrier-pigeon")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	bob.Close()
	alice.Wait("users", usersAre("lobby", "alice"))
	waitMetric(t, srv.URL, "rally_connections_closed_total", map[string]string{"transport": "polling", "reason": rally.ReasonTransportClose}, 1)

	f := scrapeMetrics(t, srv.URL)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rally_connections", map[string]string{"transport": "websocket"}, 1},
		{"rally_connections", map[string]string{"transport": "polling"}, 0},
		{"rally_handshakes_total", map[string]string{"transport": "websocket"}, 1},
		{"rally_handshakes_total", map[string]string{"transport": "polling"}, 1},
		{"rally_requests_refused_total", map[string]string{"code": "0", "message": "Transport unknown"}, 1},
		{"rally_sockets", map[string]string{"namespace": "/"}, 1},
		{"rally_socket_connects_total", map[string]string{"namespace": "/"}, 2},
		{"rally_socket_disconnects_total", map[string]string{"namespace": "/", "reason": rally.ReasonClientNamespaceDisconnect}, 1},
		{"rally_room_joins_total", map[string]string{"namespace": "/"}, 2},
		{"rally_room_leaves_total", map[string]string{"namespace": "/"}, 1},
		// Three user lists and the message.
		{"rally_broadcasts_total", map[string]string{"namespace": "/"}, 4},
		{"rally_broadcast_deliveries_total", map[string]string{"namespace": "/"}, 1 + 2 + 1 + 1},
		{"rally_write_queue_bytes", map[string]string{}, 0},
	} {
		if got := metricValue(f, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if f["go_goroutines"] == nil || f["process_start_time_seconds"] == nil {
		t.Error("/metrics lacks the Go runtime's or the process's metrics")
	}
}

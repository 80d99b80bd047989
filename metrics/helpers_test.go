package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/metrics"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is a hub on an httptest.Server, at /socket.io/, with its
// metrics at /metrics.
type server struct {
	*httptest.Server
	hub *rally.Hub
}

// serve runs hub, with col's handler at /metrics, until t ends.
func serve(t *testing.T, hub *rally.Hub, col *metrics.Collector) *server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", hub)
	mux.Handle("GET /metrics", col.Handler())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		hub.Close() // first: it ends the long-polls and websockets ts.Close would wait for
		ts.Close()
	})
	return &server{Server: ts, hub: hub}
}

// families is a scrape, parsed.
type families map[string]*dto.MetricFamily

// scrape fetches /metrics over HTTP and parses it with Prometheus' text
// parser.
func (s *server) scrape(t *testing.T) families {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain; version=0.0.4")
	res, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v\n%s", res.StatusCode, err, body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("GET /metrics: Content-Type %q", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// labels are the labels a metric is looked up by: all of its own but the
// constant ones (constLabels), as name=value pairs.
type labels map[string]string

func (l labels) String() string {
	var pairs []string
	for k, v := range l {
		pairs = append(pairs, fmt.Sprintf("%s=%q", k, v))
	}
	sort.Strings(pairs)
	return "{" + strings.Join(pairs, ",") + "}"
}

// constLabels are the names of the constant labels the tests set, which
// lookups ignore.
var constLabels = []string{"server"}

// find returns the metric of family name with exactly these labels (the
// constant ones aside), or nil.
func (f families) find(name string, want labels) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
	for _, m := range fam.Metric {
		got := labels{}
		for _, lp := range m.Label {
			if !slices.Contains(constLabels, lp.GetName()) {
				got[lp.GetName()] = lp.GetValue()
			}
		}
		if got.String() == want.String() {
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge, failing t if there is
// none.
func (f families) value(t *testing.T, name string, l labels) float64 {
	t.Helper()
	m := f.find(name, l)
	if m == nil {
		t.Fatalf("no metric %s%s; the family holds %v", name, l, f.series(name))
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%s is neither a counter nor a gauge", name, l)
	return 0
}

// histogram returns a histogram, failing t if there is none.
func (f families) histogram(t *testing.T, name string, l labels) *dto.Histogram {
	t.Helper()
	m := f.find(name, l)
	if m == nil || m.Histogram == nil {
		t.Fatalf("no histogram %s%s; the family holds %v", name, l, f.series(name))
	}
	return m.Histogram
}

// series lists the label sets of a family, for error messages.
func (f families) series(name string) []string {
	var out []string
	if fam := f[name]; fam != nil {
		for _, m := range fam.Metric {
			l := labels{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, l.String())
		}
	}
	return out
}

// expect compares counters and gauges with what the test did.
func (f families) expect(t *testing.T, want map[string]map[string]float64) {
	t.Helper()
	for name, series := range want {
		for key, v := range series {
			if got := f.value(t, name, parseLabels(key)); got != v {
				t.Errorf("%s%s = %v, want %v", name, key, got, v)
			}
		}
	}
}

// parseLabels reads `a="x",b="y"` (no commas nor quotes in values).
func parseLabels(s string) labels {
	l := labels{}
	s = strings.Trim(s, "{}")
	if s == "" {
		return l
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(pair, "=")
		l[k] = strings.Trim(v, `"`)
	}
	return l
}

// waitValue scrapes until the metric has the value want, failing t after
// 10 s.
func (s *server) waitValue(t *testing.T, name string, l labels, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f := s.scrape(t)
		got := -1.0
		if m := f.find(name, l); m != nil {
			got = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s is %v after 10s, want %v", name, l, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ctx10s is a context that ends after 10 s or with t.
func ctx10s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawPoll is a polling session driven by hand, on a transport of its
// own: it polls only when told.
type rawPoll struct {
	hc  *http.Client
	url string
}

// dialRawPoll opens a polling session and joins namespace "/" with one
// POST, without polling for the answer.
func dialRawPoll(t *testing.T, s *server) *rawPoll {
	t.Helper()
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	p := &rawPoll{hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
	body := p.do(t, "GET", s.URL+"/socket.io/?EIO=4&transport=polling", "")
	const open = `0{"sid":"`
	sid, _, ok := strings.Cut(strings.TrimPrefix(body, open), `"`)
	if !strings.HasPrefix(body, open) || !ok {
		t.Fatalf("polling handshake: %q", body)
	}
	p.url = s.URL + "/socket.io/?EIO=4&transport=polling&sid=" + sid
	p.post(t, "40")
	return p
}

// do sends a request and returns the body of its 200 answer.
func (p *rawPoll) do(t *testing.T, method, url, body string) string {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	res, err := p.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %q %v", method, url, res.StatusCode, b, err)
	}
	return string(b)
}

// post sends Engine.IO packets.
func (p *rawPoll) post(t *testing.T, packets ...string) {
	t.Helper()
	if got := p.do(t, "POST", p.url, strings.Join(packets, "\x1e")); got != "ok" {
		t.Fatalf("POST: %q", got)
	}
}

// poll reads what is queued for the session.
func (p *rawPoll) poll(t *testing.T) []string {
	t.Helper()
	return strings.Split(p.do(t, "GET", p.url, ""), "\x1e")
}

// dialStalled opens a websocket session that joins namespace nsp and then
// never reads again, with a small receive buffer so that the server's
// writes back up soon. It is closed when t ends.
func dialStalled(t *testing.T, s *server, nsp string) {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	tr := &http.Transport{DialContext: dialer.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	ctx := ctx10s(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/socket.io/?EIO=4&transport=websocket",
		&websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if _, open, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(open), "0{") {
		t.Fatalf("open: %q %v", open, err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("40"+nsp+",")); err != nil {
		t.Fatal(err)
	}
	if _, reply, err := c.Read(ctx); err != nil || !strings.HasPrefix(string(reply), "40"+nsp+",{") {
		t.Fatalf("CONNECT to %s: %q %v", nsp, reply, err)
	}
}

package rally_test

// Interop tests: the official socket.io-client (npm, run by Node) against a
// real Hub behind an httptest.Server. Every scenario runs in three
// transport modes and asserts on both sides: what the Go handlers received
// and what the Node scripts (testdata/interop/*.js) printed.
//
// Setup: npm ci --prefix testdata (tests are skipped without it, except
// under CI=true).

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// waitTimeout bounds every wait for one step of a scenario.
const waitTimeout = 10 * time.Second

// The transport modes, as RALLY_TRANSPORT values for the scripts:
// "default" starts on polling and upgrades to websocket, "websocket" and
// "polling" set the client's transports option to that one transport, and
// "deflate" is websocket only with permessage-deflate on (the client offers
// it; the server accepts it only with Options.Compression).
var interopModes = []string{"default", "websocket", "polling", "deflate"}

var interopScenarios = []struct {
	name string
	run  func(t *testing.T, mode string)
}{
	{"Hello", testInteropHello},
	{"Acks", testInteropAcks},
	{"Binary", testInteropBinary},
	{"Rooms", testInteropRooms},
	{"Broadcast", testInteropBroadcast},
	{"Namespaces", testInteropNamespaces},
	{"Middleware", testInteropMiddleware},
	{"Disconnect", testInteropDisconnect},
	{"ManyClients", testInteropManyClients},
	{"Order", testInteropOrder},
}

func TestInterop(t *testing.T) {
	nodetest.Node(t) // skip (or fail under CI) before starting anything
	for _, mode := range interopModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			for _, sc := range interopScenarios {
				t.Run(sc.name, func(t *testing.T) {
					t.Parallel()
					sc.run(t, mode)
				})
			}
		})
	}
}

// interopServer is a Hub served by an httptest.Server at /socket.io/.
type interopServer struct {
	hub  *rally.Hub
	url  string
	mode string

	mu       sync.Mutex
	errs     []string   // from Options.OnError and the hub's logger
	conns    []net.Conn // every connection accepted, for cutConnections
	cutUntil time.Time
}

// cutConnections closes every TCP connection the server accepted, and
// those it accepts for the next d, as a network failure would: the hub
// sees its transports fail, the client its requests and reconnections.
func (s *interopServer) cutConnections(d time.Duration) {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.cutUntil = time.Now().Add(d)
	s.mu.Unlock()
	for _, c := range conns {
		// Shut down rather than closed: the hub, which holds the
		// descriptor, sees the connection end as it would a failure.
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseRead()
			tc.CloseWrite()
		} else {
			c.Close()
		}
	}
}

// trackingListener records the connections it accepts, and closes at
// once those accepted while a cut lasts.
type trackingListener struct {
	net.Listener
	srv *interopServer
}

func (l trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return c, err
		}
		l.srv.mu.Lock()
		cut := time.Now().Before(l.srv.cutUntil)
		if !cut {
			l.srv.conns = append(l.srv.conns, c)
		}
		l.srv.mu.Unlock()
		if !cut {
			return c, nil
		}
		c.Close()
	}
}

// startInterop starts a hub with opts (nil for defaults), wrapped in the
// HTTP middleware wrap if not nil. The hub and the server are closed when
// the test ends, after the Node scripts are killed.
func startInterop(t *testing.T, mode string, opts *rally.Options, wrap func(http.Handler) http.Handler) *interopServer {
	t.Helper()
	srv := &interopServer{mode: mode}
	var o rally.Options
	if opts != nil {
		o = *opts
	}
	if mode == "deflate" {
		o.Compression = true
		wrap = requireDeflateOffer(t, wrap)
	}
	o.OnError = func(s *rally.Socket, err error) { srv.addErr(err.Error()) }
	o.Logger = slog.New(slog.NewTextHandler(errWriter{srv}, nil))
	srv.hub = rally.NewHub(&o)
	var h http.Handler = srv.hub
	if wrap != nil {
		h = wrap(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", h)
	ts := httptest.NewUnstartedServer(mux)
	ts.Listener = trackingListener{ts.Listener, srv}
	ts.Start()
	srv.url = ts.URL
	// Cleanups run last-in first-out: the hub closes before the server.
	t.Cleanup(func() {
		if errs := srv.errors(); len(errs) > 0 {
			t.Logf("hub errors:\n%s", strings.Join(errs, "\n"))
		}
	})
	t.Cleanup(ts.Close)
	t.Cleanup(srv.hub.Close)
	return srv
}

// requireDeflateOffer wraps the handler so that the test fails unless every
// websocket handshake offered permessage-deflate: the mode would prove
// nothing if the client did not ask for compression.
func requireDeflateOffer(t *testing.T, wrap func(http.Handler) http.Handler) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if wrap != nil {
			next = wrap(next)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Query().Get("transport") == rally.TransportWebSocket &&
				!strings.Contains(r.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
				t.Errorf("websocket handshake without a permessage-deflate offer: %q", r.Header.Get("Sec-WebSocket-Extensions"))
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *interopServer) addErr(msg string) {
	s.mu.Lock()
	s.errs = append(s.errs, msg)
	s.mu.Unlock()
}

func (s *interopServer) errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.errs)
}

type errWriter struct{ s *interopServer }

func (w errWriter) Write(b []byte) (int, error) {
	w.s.addErr(strings.TrimSpace(string(b)))
	return len(b), nil
}

// node runs testdata/interop/<script> against the server.
func (s *interopServer) node(t *testing.T, script string, args ...string) *nodetest.Process {
	t.Helper()
	p := nodetest.Start(t, script, nodetest.Options{
		Args:    args,
		Env:     []string{"RALLY_URL=" + s.url, "RALLY_TRANSPORT=" + s.mode},
		Timeout: 2 * time.Minute,
	})
	// On failure, show what the script wrote on stderr: run with
	// DEBUG='socket.io-client:*,engine.io-client:*' for the client's logs.
	t.Cleanup(func() {
		if t.Failed() {
			if stderr := p.Stderr(); stderr != "" {
				t.Logf("%s stderr:\n%s", script, stderr)
			}
		}
	})
	return p
}

// recv receives from ch, failing the test after waitTimeout.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		panic("unreachable")
	}
}

// buf is how the scripts print a Node Buffer.
func buf(b []byte) map[string]any { return map[string]any{"$buffer": hex.EncodeToString(b)} }

// pattern returns n bytes of the pattern the scripts build: byte i is
// i*7 mod 256.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

// jsonText returns the canonical JSON of v (object keys sorted).
func jsonText(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return string(b)
}

// checkJSON reports whether got and want have the same JSON, and fails the
// test (without stopping it) if not.
func checkJSON(t *testing.T, what string, got, want any) bool {
	t.Helper()
	g, w := jsonText(t, got), jsonText(t, want)
	if g != w {
		t.Errorf("%s:\n got %s\nwant %s", what, shorten(g), shorten(w))
		return false
	}
	return true
}

func shorten(s string) string {
	if len(s) > 2000 {
		return s[:1000] + fmt.Sprintf("…(%d bytes)…", len(s)-2000) + s[len(s)-1000:]
	}
	return s
}

// waitEvents waits until the script printed at least n lines of event
// whose fields include match, and returns them all.
func waitEvents(t *testing.T, p *nodetest.Process, n int, event string, match map[string]any) []nodetest.Line {
	t.Helper()
	want := normalizeJSON(t, match)
	var found []nodetest.Line
	p.WaitFor(waitTimeout, fmt.Sprintf("%d %q lines with %v", n, event, match), func(lines []nodetest.Line) bool {
		found = found[:0]
		for _, l := range lines {
			if l.Event == event && nodetest.Contains(l, want) {
				found = append(found, l)
			}
		}
		return len(found) >= n
	})
	return found
}

// waitEvent waits for the first line of event whose fields include match.
func waitEvent(t *testing.T, p *nodetest.Process, event string, match map[string]any) nodetest.Line {
	t.Helper()
	return waitEvents(t, p, 1, event, match)[0]
}

func normalizeJSON(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal([]byte(jsonText(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// assertTransports checks the transport of every connection the script
// opened: in the default mode each connected on polling and then upgraded
// to websocket (this waits for the upgrades), in the other modes each used
// only its one transport.
func assertTransports(t *testing.T, p *nodetest.Process, mode string) {
	t.Helper()
	lines := p.Lines()
	upgraded := map[string]bool{} // engine sids upgraded so far
	sids := map[string]bool{}
	for _, l := range lines {
		switch l.Event {
		case "upgrade":
			if mode != "default" {
				t.Errorf("mode %s: unexpected upgrade: %s", mode, l.Raw)
			}
			if tr := l.Text("transport"); tr != "websocket" {
				t.Errorf("after the upgrade the transport is %q, want websocket: %s", tr, l.Raw)
			}
			upgraded[l.Text("sid")] = true
		case "connect":
			sid, tr := l.Text("sid"), l.Text("transport")
			sids[sid] = true
			want := mode
			switch mode {
			case "deflate":
				want = "websocket"
			case "default":
				// A socket joining an upgraded connection starts there.
				want = "polling"
				if upgraded[sid] {
					want = "websocket"
				}
			}
			if tr != want {
				t.Errorf("mode %s: socket connected over %q, want %q: %s", mode, tr, want, l.Raw)
			}
		}
	}
	if len(sids) == 0 {
		t.Fatal("the script connected no socket")
	}
	if mode != "default" {
		return
	}
	p.WaitFor(waitTimeout, "the upgrade of every connection to websocket", func(lines []nodetest.Line) bool {
		up := map[string]bool{}
		for _, l := range lines {
			if l.Event == "upgrade" && l.Text("transport") == "websocket" {
				up[l.Text("sid")] = true
			}
		}
		for sid := range sids {
			if !up[sid] {
				return false
			}
		}
		return true
	})
}

// serverTransport is the transport a connection should end up on in mode.
func serverTransport(mode string) string {
	if mode == "polling" {
		return rally.TransportPolling
	}
	return rally.TransportWebSocket
}

// ---------------------------------------------------------------------
// Scenario: the client code from the issue, verbatim (hello.js).

func testInteropHello(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	type salutation struct {
		text string
		who  map[string]any
		data []byte
	}
	connected := make(chan *rally.Socket, 10)
	messages := make(chan string, 10)
	salutations := make(chan salutation, 10)
	srv.hub.OnConnect(func(s *rally.Socket) {
		connected <- s
		if err := s.Emit("greetings", "Hey!", map[string]any{"ms": "jane"}, []byte{4, 3, 3, 1}); err != nil {
			srv.addErr("emitting greetings: " + err.Error())
		}
	})
	srv.hub.On("message", func(s *rally.Socket, data string) {
		messages <- data
		s.Send(data)
	})
	srv.hub.On("salutations", func(s *rally.Socket, text string, who map[string]any, data []byte) {
		salutations <- salutation{text, who, data}
	})

	p := srv.node(t, "hello.js")

	s := recv(t, connected, "the connection")
	if got := recv(t, messages, "the message event"); got != "Hello!" {
		t.Errorf("message: got %q, want %q", got, "Hello!")
	}
	sal := recv(t, salutations, "the salutations event")
	if sal.text != "Hello!" {
		t.Errorf("salutations text: got %q, want %q", sal.text, "Hello!")
	}
	checkJSON(t, "salutations object", sal.who, map[string]any{"mr": "john"})
	if !bytes.Equal(sal.data, []byte{1, 2, 3, 4}) {
		t.Errorf("salutations binary: got %x, want 01020304", sal.data)
	}

	logs := waitEvents(t, p, 2, "log", nil)
	var got []any
	for _, l := range logs {
		got = append(got, l.Get("args"))
	}
	slices.SortFunc(got, func(a, b any) int { return strings.Compare(jsonText(t, a), jsonText(t, b)) })
	checkJSON(t, "what Node logged", got, []any{
		[]any{"Hello!"},
		[]any{"Hey!", map[string]any{"ms": "jane"}, buf([]byte{4, 3, 3, 1})},
	})

	assertTransports(t, p, mode)
	if tr := s.Transport(); tr != serverTransport(mode) {
		t.Errorf("server side transport: got %q, want %q", tr, serverTransport(mode))
	}
}

// ---------------------------------------------------------------------
// Scenario: acknowledgements both ways (acks.js).

func testInteropAcks(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	connected := make(chan *rally.Socket, 10)
	srv.hub.OnConnect(func(s *rally.Socket) { connected <- s })
	srv.hub.On("sum", func(s *rally.Socket, a, b int) int { return a + b })
	srv.hub.On("divide", func(s *rally.Socket, a, b float64) (float64, error) {
		if b == 0 {
			return 0, fmt.Errorf("division by zero")
		}
		return a / b, nil
	})
	srv.hub.On("profile", func(s *rally.Socket, name string) (string, map[string]any) {
		return "hello " + name, map[string]any{"name": name, "len": len(name)}
	})
	srv.hub.On("nothing", func(s *rally.Socket) {})

	p := srv.node(t, "acks.js")

	// Client to server: the handlers' results reach the callbacks.
	wantAcks := map[string]any{
		"sum":            []any{42},
		"divide":         []any{0.25},
		"divide-by-zero": []any{map[string]any{"error": "division by zero"}},
		"profile":        []any{"hello alice", map[string]any{"name": "alice", "len": 5}},
		"nothing":        []any{},
		"emitWithAck":    []any{42},
	}
	for tag, want := range wantAcks {
		l := waitEvent(t, p, "ack", map[string]any{"tag": tag})
		checkJSON(t, "ack "+tag, l.Get("args"), want)
	}
	if acks := waitEvents(t, p, len(wantAcks), "ack", nil); len(acks) != len(wantAcks) {
		t.Errorf("got %d acks, want %d", len(acks), len(wantAcks))
	}
	if errs := srv.errors(); !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, "division by zero") }) {
		t.Errorf("OnError did not get the handler's error; got %q", errs)
	}

	// Server to client: EmitWithAck answered by the Node callbacks.
	s := recv(t, connected, "the connection")
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	reply, err := s.EmitWithAck(ctx, "ask", "why?", 21)
	if err != nil {
		t.Fatalf("EmitWithAck(ask): %v", err)
	}
	var (
		answer string
		double int
		meta   struct {
			From string `json:"from"`
			OK   bool   `json:"ok"`
		}
	)
	if err := reply.Decode(&answer, &double, &meta); err != nil {
		t.Fatalf("decoding the ask reply: %v", err)
	}
	if reply.Len() != 3 || answer != "WHY?" || double != 42 || meta.From != "node" || !meta.OK {
		t.Errorf("ask reply: got %d args %q, %d, %+v; want 3 args \"WHY?\", 42, {From:node OK:true}",
			reply.Len(), answer, double, meta)
	}
	checkJSON(t, "what Node was asked", waitEvent(t, p, "asked", map[string]any{"ev": "ask"}).Get("args"), []any{"why?", 21})

	_, err = s.EmitWithAck(ctx, "refuse")
	var ackErr *rally.AckError
	if !errors.As(err, &ackErr) || ackErr.Message != "node says no" {
		t.Errorf("EmitWithAck(refuse): got error %v, want *rally.AckError \"node says no\"", err)
	}

	reply, err = s.EmitWithAck(ctx, "empty")
	if err != nil || reply.Len() != 0 {
		t.Errorf("EmitWithAck(empty): got %d args, error %v; want 0 args, no error", reply.Len(), err)
	}
	waitEvent(t, p, "asked", map[string]any{"ev": "empty"})

	assertTransports(t, p, mode)
}

// ---------------------------------------------------------------------
// Scenario: binary both ways, nested, and in acks (binary.js).

type uploadMeta struct {
	Name   string `json:"name"`
	Nested struct {
		Data []byte `json:"data"`
		List []any  `json:"list"`
	} `json:"nested"`
}

type upload struct {
	all, big []byte
	meta     uploadMeta
	pair     [][]byte
}

type labeled struct {
	Label string `json:"label"`
	Data  []byte `json:"data"`
}

func testInteropBinary(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	connected := make(chan *rally.Socket, 10)
	uploads := make(chan upload, 10)
	srv.hub.OnConnect(func(s *rally.Socket) { connected <- s })
	srv.hub.On("upload", func(s *rally.Socket, all []byte, meta uploadMeta, pair [][]byte, big []byte) (map[string]any, []byte) {
		uploads <- upload{all: all, big: big, meta: meta, pair: pair}
		var swapped [][]byte
		for i := len(pair) - 1; i >= 0; i-- {
			swapped = append(swapped, pair[i])
		}
		return map[string]any{
			"sizes":  []int{len(all), len(big)},
			"nested": meta.Nested.Data,
			"pair":   swapped,
		}, big[:min(10, len(big))]
	})
	srv.hub.On("echo", func(s *rally.Socket, args ...any) { s.Emit("echo", args...) })

	p := srv.node(t, "binary.js")
	s := recv(t, connected, "the connection")

	// Server to client, binary at several depths, empty and large buffers.
	big := pattern(70000)
	if err := s.Emit("download",
		[]byte{0, 1, 2, 255},
		map[string]any{"nested": map[string]any{"data": []byte("hi"), "list": []any{[]byte{9}, "y"}}},
		[][]byte{{1}, {2}},
		labeled{Label: "struct", Data: []byte{0xca, 0xfe}},
		big,
		[]byte{},
	); err != nil {
		t.Fatalf("Emit(download): %v", err)
	}

	// Client to server: the handler got every buffer, decoded into Go types.
	ack := waitEvent(t, p, "ack", map[string]any{"tag": "upload"})
	var up upload
	select {
	case up = <-uploads:
	default:
		t.Fatalf("the upload handler did not run; Node got the ack %s", ack.Raw)
	}
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if !bytes.Equal(up.all, all) {
		t.Errorf("upload arg 1: got %x, want 00..ff", up.all)
	}
	if up.meta.Name != "blob" || string(up.meta.Nested.Data) != "nested" {
		t.Errorf("upload arg 2: got name %q data %q, want blob, nested", up.meta.Name, up.meta.Nested.Data)
	}
	if l := up.meta.Nested.List; len(l) != 3 {
		t.Errorf("upload nested list: got %#v, want [01, x, empty]", l)
	} else {
		if b, ok := l[0].([]byte); !ok || !bytes.Equal(b, []byte{1}) {
			t.Errorf("upload nested list[0]: got %#v, want []byte{1}", l[0])
		}
		if l[1] != "x" {
			t.Errorf("upload nested list[1]: got %#v, want \"x\"", l[1])
		}
		if b, ok := l[2].([]byte); !ok || len(b) != 0 {
			t.Errorf("upload nested list[2]: got %#v, want an empty []byte", l[2])
		}
	}
	if len(up.pair) != 2 || !bytes.Equal(up.pair[0], []byte{0xde, 0xad}) || !bytes.Equal(up.pair[1], []byte{0xbe, 0xef}) {
		t.Errorf("upload arg 3: got %x, want [dead beef]", up.pair)
	}
	if !bytes.Equal(up.big, pattern(100000)) {
		t.Errorf("upload arg 4: got %d bytes, want the 100000-byte pattern", len(up.big))
	}
	// The handler's binary results reach the Node callback.
	checkJSON(t, "upload ack", ack.Get("args"), []any{
		map[string]any{
			"sizes":  []any{256, 100000},
			"nested": buf([]byte("nested")),
			"pair":   []any{buf([]byte{0xbe, 0xef}), buf([]byte{0xde, 0xad})},
		},
		buf(pattern(100000)[:10]),
	})

	// Handlers taking ...any re-emit binary as they got it.
	sent := waitEvent(t, p, "sent", map[string]any{"ev": "echo"})
	echoed := waitEvent(t, p, "recv", map[string]any{"ev": "echo"})
	wantEcho := []any{buf([]byte{1, 2, 3}), map[string]any{"deep": []any{map[string]any{"x": buf([]byte{4})}}, "n": 1}, "text"}
	checkJSON(t, "what Node sent to echo", sent.Get("args"), wantEcho)
	checkJSON(t, "the echo Node got back", echoed.Get("args"), wantEcho)

	// What the server emitted arrives as Buffers.
	down := waitEvent(t, p, "recv", map[string]any{"ev": "download"})
	checkJSON(t, "download", down.Get("args"), []any{
		buf([]byte{0, 1, 2, 255}),
		map[string]any{"nested": map[string]any{"data": buf([]byte("hi")), "list": []any{buf([]byte{9}), "y"}}},
		[]any{buf([]byte{1}), buf([]byte{2})},
		map[string]any{"label": "struct", "data": buf([]byte{0xca, 0xfe})},
		buf(big),
		buf([]byte{}),
	})

	// Binary in a Node callback's answer to EmitWithAck.
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	reply, err := s.EmitWithAck(ctx, "transform", []byte{1, 2, 3})
	if err != nil {
		t.Fatalf("EmitWithAck(transform): %v", err)
	}
	var (
		reversed []byte
		extra    struct {
			Inner []byte `json:"inner"`
			List  []any  `json:"list"`
		}
	)
	if err := reply.Decode(&reversed, &extra); err != nil {
		t.Fatalf("decoding the transform reply: %v", err)
	}
	if !bytes.Equal(reversed, []byte{3, 2, 1}) || string(extra.Inner) != "ok" {
		t.Errorf("transform reply: got %x, inner %q; want 030201, \"ok\"", reversed, extra.Inner)
	}
	if len(extra.List) != 2 || !bytes.Equal(asBytes(extra.List[0]), []byte{7}) || extra.List[1] != "z" {
		t.Errorf("transform reply list: got %#v, want [[]byte{7}, \"z\"]", extra.List)
	}
	checkJSON(t, "what transform got", waitEvent(t, p, "recv", map[string]any{"ev": "transform"}).Get("args"),
		[]any{buf([]byte{1, 2, 3})})

	assertTransports(t, p, mode)
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}

// ---------------------------------------------------------------------
// Scenario: 1,000 events in order, both directions (order.js).

func testInteropOrder(t *testing.T, mode string) {
	const n = 1000
	srv := startInterop(t, mode, nil, nil)
	connected := make(chan *rally.Socket, 10)
	var (
		mu      sync.Mutex
		got     []int
		badText []string
	)
	srv.hub.OnConnect(func(s *rally.Socket) { connected <- s })
	srv.hub.On("seq", func(s *rally.Socket, i int, text string) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, i)
		if text != fmt.Sprintf("m%d", i) {
			badText = append(badText, fmt.Sprintf("%d:%q", i, text))
		}
	})
	srv.hub.On("seqdone", func(s *rally.Socket) int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	})

	p := srv.node(t, "order.js", fmt.Sprint(n))
	s := recv(t, connected, "the connection")
	// Emitted right away: in the default mode this overlaps the upgrade.
	for i := range n {
		if err := s.Emit("seq", i, fmt.Sprintf("m%d", i)); err != nil {
			t.Fatalf("Emit(seq, %d): %v", i, err)
		}
	}
	if err := s.Emit("seqdone", n); err != nil {
		t.Fatalf("Emit(seqdone): %v", err)
	}

	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	// The seqdone handler runs after the handlers of every earlier event.
	ack := waitEvent(t, p, "ack", map[string]any{"tag": "seqdone"})
	checkJSON(t, "seqdone ack", ack.Get("args"), []any{n})
	mu.Lock()
	checkJSON(t, "the order the server got", got, want)
	if len(badText) > 0 {
		t.Errorf("the server got wrong texts: %v", badText)
	}
	mu.Unlock()

	res := waitEvent(t, p, "received", nil)
	checkJSON(t, "seqdone arg", res.Get("n"), n)
	checkJSON(t, "the order Node got", res.Get("seq"), want)
	checkJSON(t, "texts Node got wrong", res.Get("mismatched"), []any{})

	assertTransports(t, p, mode)
}

// ---------------------------------------------------------------------
// Scenario: 200 clients, one broadcast each (many.js).

func testInteropManyClients(t *testing.T, mode string) {
	const n = 200
	srv := startInterop(t, mode, nil, nil)
	connected := make(chan string, 2*n)
	srv.hub.OnConnect(func(s *rally.Socket) { connected <- s.ID() })

	p := srv.node(t, "many.js", fmt.Sprint(n))
	ids := map[string]bool{}
	for range n {
		ids[recv(t, connected, fmt.Sprintf("connection %d of %d", len(ids)+1, n))] = true
	}
	if len(ids) != n {
		t.Fatalf("got %d distinct socket ids, want %d", len(ids), n)
	}
	p.WaitFor(3*waitTimeout, "all-ready", func(lines []nodetest.Line) bool {
		return slices.ContainsFunc(lines, func(l nodetest.Line) bool { return l.Event == "all-ready" })
	})

	if err := srv.hub.Emit("blast", "hello everyone", 7); err != nil {
		t.Fatalf("Emit(blast): %v", err)
	}
	// Each connection delivers in order: sync arriving means blast has too.
	if err := srv.hub.Emit("sync", 1); err != nil {
		t.Fatalf("Emit(sync): %v", err)
	}
	lines := p.WaitFor(3*waitTimeout, "sync at every client", func(lines []nodetest.Line) bool {
		return countRecv(lines, "sync") >= n
	})
	blasts := map[string]int{}
	for _, l := range lines {
		if l.Event == "recv" && l.Text("ev") == "blast" {
			blasts[l.Text("name")]++
			checkJSON(t, "blast args at "+l.Text("name"), l.Get("args"), []any{"hello everyone", 7})
		}
	}
	for i := range n {
		name := fmt.Sprintf("c%d", i)
		if blasts[name] != 1 {
			t.Errorf("%s got the broadcast %d times, want once", name, blasts[name])
		}
	}
	if c := countRecv(lines, "sync"); c != n {
		t.Errorf("sync arrived %d times, want %d", c, n)
	}
	select {
	case id := <-connected:
		t.Errorf("unexpected connection %s (a reconnect?)", id)
	default:
	}

	assertTransports(t, p, mode)
}

func countRecv(lines []nodetest.Line, ev string) int {
	n := 0
	for _, l := range lines {
		if l.Event == "recv" && l.Text("ev") == ev {
			n++
		}
	}
	return n
}

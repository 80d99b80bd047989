package pollclient

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeServer is just enough of an Engine.IO polling server: one session,
// whose GETs answer what its POSTs queued (an ack for each echo, the
// CONNECT reply for "40", a ping after the CONNECT reply).
type fakeServer struct {
	mu     sync.Mutex
	queue  []string
	ready  *sync.Cond
	closed bool
	pongs  int
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Query().Get("sid") == "" {
		io.WriteString(w, `0{"sid":"s1","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)
		return
	}
	if f.closed {
		http.Error(w, `{"code":1,"message":"Session ID unknown"}`, http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		for _, p := range strings.Split(string(body), "\x1e") {
			switch {
			case p == "40":
				f.queue = append(f.queue, `40{"sid":"a"}`, "2")
			case p == "3":
				f.pongs++
			case p == "1":
				f.closed = true
			case strings.HasPrefix(p, "42"):
				id, args, _ := strings.Cut(p[2:], "[")
				f.queue = append(f.queue, "43"+id+"["+strings.TrimPrefix(args, `"echo",`))
			}
		}
		f.ready.Broadcast()
		io.WriteString(w, "ok")
		return
	}
	for len(f.queue) == 0 && !f.closed {
		f.ready.Wait()
	}
	if f.closed {
		io.WriteString(w, "1")
		return
	}
	io.WriteString(w, strings.Join(f.queue, "\x1e"))
	f.queue = f.queue[:0]
}

func TestSession(t *testing.T) {
	for _, how := range []string{"raw", "net/http"} {
		t.Run(strings.ReplaceAll(how, "/", ""), func(t *testing.T) {
			wire, err := ParseWire(how)
			if err != nil {
				t.Fatal(err)
			}
			testSession(t, wire)
		})
	}
}

func testSession(t *testing.T, how Wire) {
	f := &fakeServer{}
	f.ready = sync.NewCond(&f.mu)
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := NewClient(strings.TrimPrefix(srv.URL, "http://"), how, 0)
	defer c.Close()
	s, err := c.Open()
	if err != nil {
		t.Fatal(err)
	}
	if s.Hs.SID != "s1" || s.Hs.PingInterval != 25000 {
		t.Fatalf("handshake %+v", s.Hs)
	}
	reply, err := s.Join()
	if err != nil || string(reply) != `{"sid":"a"}` {
		t.Fatalf("Join: %q, %v", reply, err)
	}
	// The ping that came with the CONNECT reply was answered.
	f.mu.Lock()
	pongs := f.pongs
	f.mu.Unlock()
	if pongs != 1 {
		t.Errorf("%d pongs, want 1", pongs)
	}
	if err := s.Post([]byte(`427["echo",{"x":1}]` + "\x1e" + `428["echo",2]`)); err != nil {
		t.Fatal(err)
	}
	payload, err := s.Poll()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	Packets(payload, func(p []byte) bool { got = append(got, string(p)); return true })
	if strings.Join(got, "|") != `437[{"x":1}]|438[2]` {
		t.Errorf("packets %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The session is gone: a POST is refused with ErrClosed.
	if err := s.Post([]byte("3")); err == nil {
		t.Error("POST after close: no error")
	}
}

package rally_test

// Socket.IO v2 clients (Options.AllowEIO3) spoken to by hand over
// Engine.IO 3 polling: what Node's server sends them, and bad input.

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

// v3Poll is a hand-driven Engine.IO 3 polling client.
type v3Poll struct {
	*rawPoll
}

func openV3Poll(t *testing.T, srv *sockettest.Server, query string) *v3Poll {
	t.Helper()
	p := &v3Poll{&rawPoll{t: t, url: srv.URL + "/socket.io/"}}
	status, body := p.do("GET", "EIO=3&transport=polling"+query, "")
	n, open, _ := strings.Cut(body, ":")
	if status != 200 || n != strconv.Itoa(len(open)) || !strings.HasPrefix(open, `0{"sid":"`) {
		t.Fatalf("handshake: %d %q", status, body)
	}
	p.sid = open[len(`0{"sid":"`) : len(`0{"sid":"`)+20]
	return p
}

// post sends packets as one payload.
func (p *v3Poll) post(packets ...string) (int, string) {
	p.t.Helper()
	var b strings.Builder
	for _, s := range packets {
		b.WriteString(strconv.Itoa(len([]rune(s))) + ":" + s) // the tests' text is in the BMP
	}
	return p.do("POST", "EIO=3&transport=polling&sid="+p.sid, b.String())
}

// poll returns the packets of the next poll.
func (p *v3Poll) poll() []string {
	p.t.Helper()
	status, body := p.do("GET", "EIO=3&transport=polling&sid="+p.sid, "")
	if status != 200 {
		p.t.Fatalf("poll: %d %q", status, body)
	}
	var out []string
	for body != "" {
		n, rest, ok := strings.Cut(body, ":")
		size, err := strconv.Atoi(n)
		if !ok || err != nil || size > len(rest) {
			p.t.Fatalf("payload %q", body)
		}
		out = append(out, rest[:size])
		body = rest[size:]
	}
	return out
}

// expect polls until the packets seen include want, in order.
func (p *v3Poll) expect(want ...string) {
	p.t.Helper()
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < len(want) && time.Now().Before(deadline) {
		seen = append(seen, p.poll()...)
	}
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		p.t.Fatalf("got %q, want %q", seen, want)
	}
}

// expectAnyOrder polls until the packets seen are want, in any order
// (namespaces answer on their own).
func (p *v3Poll) expectAnyOrder(want ...string) {
	p.t.Helper()
	var seen []string
	deadline := time.Now().Add(5 * time.Second)
	for len(seen) < len(want) && time.Now().Before(deadline) {
		seen = append(seen, p.poll()...)
	}
	slices.Sort(seen)
	if strings.Join(seen, " ") != strings.Join(want, " ") {
		p.t.Fatalf("got %q, want %q", seen, want)
	}
}

func TestEIO3Connect(t *testing.T) {
	hub := rally.NewHub(&rally.Options{AllowEIO3: true})
	ids := make(chan string, 4)
	hub.OnConnect(func(s *rally.Socket) { ids <- s.ID() })
	hub.Of("/admin").Use(func(s *rally.Socket) error {
		var auth map[string]string
		if err := s.Handshake().DecodeAuth(&auth); err != nil {
			return err
		}
		if auth["token"] == "x" {
			ids <- s.ID() + " " + string(s.Handshake().Auth)
			return nil
		}
		return &rally.ConnectError{Message: "refused", Data: map[string]any{"token": auth["token"]}}
	})
	hub.Of("/plain").Use(func(s *rally.Socket) error { return errors.New("no") })
	srv := sockettest.NewServer(t, hub)

	p := openV3Poll(t, srv, "")
	// The main namespace, without a CONNECT, and the socket id is the
	// engine's.
	p.expect("40")
	if id := recv(t, ids, "the main socket"); id != p.sid {
		t.Errorf("socket id %q, engine id %q", id, p.sid)
	}
	// Another namespace with its query; repeated keys keep the last.
	p.post("40/admin?token=y&token=x,")
	p.expect("40/admin,") // as Node writes it
	if got, want := recv(t, ids, "the admin socket"), "/admin#"+p.sid+` {"token":"x"}`; got != want {
		t.Errorf("admin socket %q, want %q", got, want)
	}
	// Refusals: data alone, or the message alone; an unknown namespace as
	// for every client. The session stays.
	p2 := openV3Poll(t, srv, "")
	p2.expect("40")
	<-ids
	p2.post("40/admin?token=no,", "40/plain,", "40/nope,")
	p2.expectAnyOrder(`44/admin,{"token":"no"}`, `44/nope,{"message":"Invalid namespace"}`, `44/plain,"no"`)
	// The main namespace's packets may carry a query too, as Node reads
	// them: "/?x=1" is "/".
	p.post(`42/?x=1,["ping"]`, "2")
	p.expect("3")
	// A second CONNECT to "/" closes the connection, as in Node.
	p.post("40")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if status, _ := p.do("GET", "EIO=3&transport=polling&sid="+p.sid, ""); status == 400 {
			return
		}
	}
	t.Error("the session is still open after a second CONNECT to /")
}

// Refused in the main namespace, a v2 client gets the error as soon as
// its session opens.
func TestEIO3MainRefused(t *testing.T) {
	hub := rally.NewHub(&rally.Options{AllowEIO3: true})
	hub.Use(func(s *rally.Socket) error {
		if s.Handshake().Query.Get("token") == "ok" {
			return nil
		}
		return errors.New("not authorized")
	})
	srv := sockettest.NewServer(t, hub)
	openV3Poll(t, srv, "&token=no").expect(`44"not authorized"`)
	openV3Poll(t, srv, "&token=ok").expect("40")
}

// Without AllowEIO3 a v2 client is refused as by Node.
func TestEIO3Off(t *testing.T) {
	srv := sockettest.NewServer(t, rally.NewHub(nil))
	p := &rawPoll{t: t, url: srv.URL + "/socket.io/"}
	if status, body := p.do("GET", "EIO=3&transport=polling", ""); status != 400 || body != `{"code":5,"message":"Unsupported protocol version"}` {
		t.Errorf("%d %s", status, body)
	}
}

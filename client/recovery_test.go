package client_test

// Connection state recovery against the official Node server
// (testdata/interop/client-recovery-server.js): a socket whose connection
// was lost gets its id back and every event broadcast meanwhile, once, in
// order; one that disconnected on purpose, or stayed away too long, starts
// afresh.

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
)

// nodeRecovery is a running client-recovery-server.js.
type nodeRecovery struct {
	p    *nodetest.Process
	url  string
	sent int // commands sent, each answered by a "done" line
}

func startNodeRecovery(t *testing.T, maxDisconnectionMS int) *nodeRecovery {
	t.Helper()
	var env []string
	if maxDisconnectionMS > 0 {
		env = append(env, fmt.Sprintf("RALLY_MAX_DISCONNECTION_MS=%d", maxDisconnectionMS))
	}
	p := nodetest.Start(t, "client-recovery-server.js", nodetest.Options{Env: env})
	return &nodeRecovery{p: p, url: p.WaitEvent(wait, "listening", nil).Text("url")}
}

// do sends a command and waits until the script has run it.
func (n *nodeRecovery) do(t *testing.T, cmd map[string]any) {
	t.Helper()
	n.p.Send(cmd)
	n.sent++
	want := n.sent
	n.p.WaitFor(wait, fmt.Sprintf("command %v done", cmd), func(lines []nodetest.Line) bool {
		done := 0
		for _, l := range lines {
			if l.Event == "done" {
				done++
			}
		}
		return done >= want
	})
}

func (n *nodeRecovery) broadcast(t *testing.T, nsp string, ticks ...int) {
	t.Helper()
	for _, i := range ticks {
		n.do(t, map[string]any{"op": "broadcast", "nsp": nsp, "ev": "tick", "args": []any{i}})
	}
}

// connection waits for the server's connection event of the socket id on
// nsp and returns it.
func (n *nodeRecovery) connection(t *testing.T, nsp, id string) nodetest.Line {
	t.Helper()
	return n.p.WaitEvent(wait, "connection", map[string]any{"nsp": nsp, "id": id})
}

// tickLog records, in the order the socket runs them, its connections and
// the "tick" events it handles; it checks that each tick came with its
// offset as a last, extra argument.
type tickLog struct {
	mu      sync.Mutex
	entries []string
	offsets []string // the offset of each tick, as OnAny saw it
	bad     []string
}

func logTicks(c *client.Socket) *tickLog {
	l := &tickLog{}
	c.OnConnect(func() { l.add("connect " + c.ID()) })
	c.On("tick", func(n int) { l.add(fmt.Sprint(n)) })
	c.OnAny(func(event string, args rally.Reply) {
		var n int
		var offset string
		l.mu.Lock()
		defer l.mu.Unlock()
		if args.Len() != 2 || args.Decode(&n, &offset) != nil || offset == "" {
			l.bad = append(l.bad, fmt.Sprintf("%s %v", event, args.Values()))
		}
		l.offsets = append(l.offsets, offset)
	})
	return l
}

func (l *tickLog) add(e string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

func (l *tickLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

func (l *tickLog) waitFor(t *testing.T, entry string) {
	t.Helper()
	waitUntil(t, "logged "+entry, func() bool { return slices.Contains(l.snapshot(), entry) })
}

func (l *tickLog) check(t *testing.T, want []string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(l.entries, want) {
		t.Fatalf("socket saw\n  %s\nwant\n  %s", strings.Join(l.entries, ", "), strings.Join(want, ", "))
	}
	if len(l.bad) > 0 {
		t.Fatalf("ticks without their offset: %v", l.bad)
	}
}

var nodeCuts = []struct {
	name string
	cut  func(t *testing.T, n *nodeRecovery, nsp, id string)
}{
	{"conn.close", func(t *testing.T, n *nodeRecovery, nsp, id string) {
		n.do(t, map[string]any{"op": "cut", "nsp": nsp, "id": id})
	}},
	{"tcp", func(t *testing.T, n *nodeRecovery, nsp, id string) {
		n.do(t, map[string]any{"op": "destroy"})
	}},
}

func TestRecoveryNode(t *testing.T) {
	for _, mode := range reconnectModes {
		for _, cut := range nodeCuts {
			t.Run(mode.name+"/"+cut.name, func(t *testing.T) {
				n := startNodeRecovery(t, 0)
				m, err := client.NewManager(n.url, &client.Options{
					Transports:           mode.transports,
					Auth:                 map[string]string{"token": "t0"},
					ReconnectionDelay:    50 * time.Millisecond,
					ReconnectionDelayMax: 200 * time.Millisecond,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(m.Close)
				names := []string{"/", "/chat"}
				var socks []*client.Socket
				var lives []*life
				var logs []*tickLog
				for _, name := range names {
					c := m.Socket(name)
					socks, lives, logs = append(socks, c), append(lives, watch(c)), append(logs, logTicks(c))
				}
				var ids []string
				for i, c := range socks {
					if err := c.Connect(ctxWait(t)); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, c.ID())
					if l := n.connection(t, names[i], c.ID()); l.Get("recovered") != false {
						t.Fatalf("first connection: %s", l.Raw)
					}
					if c.Recovered() {
						t.Fatal("Recovered after the first Connect")
					}
				}
				if mode.final == client.TransportWebSocket {
					waitUntil(t, "upgraded", func() bool { return m.Transport() == client.TransportWebSocket })
				}
				// An offset to recover from.
				for i, name := range names {
					n.broadcast(t, name, 0)
					logs[i].waitFor(t, "0")
				}

				n.do(t, map[string]any{"op": "down"})
				cut.cut(t, n, "/", ids[0])
				for i, name := range names {
					recv(t, lives[i].disconnects, "disconnect of "+name)
					n.p.WaitEvent(wait, "disconnect", map[string]any{"nsp": name, "id": ids[i]})
				}
				for _, name := range names {
					n.broadcast(t, name, 1, 2, 3, 4, 5)
				}
				n.do(t, map[string]any{"op": "up"})
				for i, c := range socks {
					recv(t, lives[i].connects, "connect") // the first
					recv(t, lives[i].connects, "reconnect of "+names[i])
					if !c.Recovered() || c.ID() != ids[i] {
						t.Fatalf("%s: recovered %v, id %q (was %q)", names[i], c.Recovered(), c.ID(), ids[i])
					}
					recovered := n.p.WaitEvent(wait, "connection", map[string]any{"nsp": names[i], "id": ids[i], "recovered": true})
					auth, _ := recovered.Get("auth").(map[string]any)
					logs[i].mu.Lock()
					offset := logs[i].offsets[0]
					logs[i].mu.Unlock()
					if auth["token"] != "t0" || auth["offset"] != offset || auth["pid"] == nil {
						t.Fatalf("%s: auth of the recovering CONNECT %v, want the token, the pid and offset %q", names[i], auth, offset)
					}
				}
				for i, name := range names {
					n.broadcast(t, name, 6, 7)
					logs[i].waitFor(t, "7")
					logs[i].check(t, []string{"connect " + ids[i], "0", "connect " + ids[i], "1", "2", "3", "4", "5", "6", "7"})
				}

				// Disconnect and Connect: a new session. The official client
				// would present its pid again, and Node recover it.
				c := socks[0]
				c.Disconnect()
				<-c.Done()
				n.p.WaitEvent(wait, "disconnect", map[string]any{"nsp": "/", "id": ids[0], "reason": "client namespace disconnect"})
				if err := c.Connect(ctxWait(t)); err != nil {
					t.Fatal(err)
				}
				if c.Recovered() || c.ID() == ids[0] {
					t.Fatalf("after Disconnect and Connect: recovered %v, id %q (was %q)", c.Recovered(), c.ID(), ids[0])
				}
				l := n.connection(t, "/", c.ID())
				if auth, _ := l.Get("auth").(map[string]any); l.Get("recovered") != false || auth["pid"] != nil || auth["token"] != "t0" {
					t.Fatalf("server: %s", l.Raw)
				}
			})
		}
	}
}

// A session kept longer than maxDisconnectionDuration is not recovered:
// a new id, and the events sent meanwhile are not delivered.
func TestRecoveryNodeExpired(t *testing.T) {
	n := startNodeRecovery(t, 1000)
	c := client.New(n.url, &client.Options{ReconnectionDelay: 50 * time.Millisecond, ReconnectionDelayMax: 200 * time.Millisecond})
	t.Cleanup(func() { c.Close() })
	lv, log := watch(c), logTicks(c)
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	first := c.ID()
	n.broadcast(t, "/", 0)
	log.waitFor(t, "0")
	n.do(t, map[string]any{"op": "down"})
	n.do(t, map[string]any{"op": "cut", "nsp": "/", "id": first})
	recv(t, lv.disconnects, "disconnect")
	n.p.WaitEvent(wait, "disconnect", map[string]any{"nsp": "/", "id": first})
	n.broadcast(t, "/", 1)
	n.p.WaitEvent(wait, "expired", map[string]any{"nsp": "/", "id": first})
	n.do(t, map[string]any{"op": "up"})
	recv(t, lv.connects, "connect")
	second := recv(t, lv.connects, "reconnect")
	if c.Recovered() || second == first || c.ID() != second {
		t.Fatalf("after expiry: recovered %v, id %q (was %q)", c.Recovered(), c.ID(), first)
	}
	if l := n.connection(t, "/", second); l.Get("recovered") != false {
		t.Fatalf("server: %s", l.Raw)
	}
	n.broadcast(t, "/", 2)
	log.waitFor(t, "2")
	log.check(t, []string{"connect " + first, "0", "connect " + second, "2"})
}

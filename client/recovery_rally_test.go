package client_test

// Connection state recovery against a rally hub with
// Options.ConnectionStateRecovery: the same checks as against Node.

import (
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// recoveryHub returns a hub with recovery on for "/" and "/chat" whose
// connects and disconnects the test can follow.
func recoveryHub(maxDisconnection time.Duration) (*rally.Hub, chan serverConnect, chan serverConnect) {
	hub := rally.NewHub(&rally.Options{
		// Short heartbeats: a connection cut under the server is noticed,
		// and its session kept, soon.
		PingInterval:            500 * time.Millisecond,
		PingTimeout:             500 * time.Millisecond,
		ConnectionStateRecovery: &rally.Recovery{MaxDisconnectionDuration: maxDisconnection},
	})
	connects, disconnects := make(chan serverConnect, 64), make(chan serverConnect, 64)
	for _, name := range []string{"/", "/chat"} {
		nsp := hub.Of(name)
		nsp.OnConnect(func(s *rally.Socket) { connects <- serverConnect{name, s.ID(), s.Recovered(), ""} })
		nsp.OnDisconnect(func(s *rally.Socket, reason string) { disconnects <- serverConnect{name, s.ID(), false, reason} })
	}
	return hub, connects, disconnects
}

type serverConnect struct {
	nsp, id   string
	recovered bool
	reason    string
}

// Ticks broadcast while the client is cut off reach it once each, in
// order, after its OnConnect, with its id back; Disconnect then Connect
// starts afresh.
func TestRecoveryRally(t *testing.T) {
	for _, mode := range reconnectModes {
		for _, cut := range cuts {
			t.Run(mode.name+"/"+cut.name, func(t *testing.T) {
				hub, connects, disconnects := recoveryHub(0)
				hub.On("cut", func(s *rally.Socket) { s.CloseConnection() })
				cs := newCutServer(t, hub)
				m := cs.manager(t, cs.opts(mode.transports))
				names := []string{"/", "/chat"}
				var socks []*client.Socket
				var lives []*life
				var logs []*tickLog
				for _, name := range names {
					c := m.Socket(name)
					socks, lives, logs = append(socks, c), append(lives, watch(c)), append(logs, logTicks(c))
				}
				var ids []string
				for _, c := range socks {
					if err := c.Connect(ctxWait(t)); err != nil {
						t.Fatal(err)
					}
					ids = append(ids, c.ID())
					if sc := recv(t, connects, "server connect"); sc.recovered || c.Recovered() {
						t.Fatalf("first connection recovered: %+v", sc)
					}
				}
				if mode.final == client.TransportWebSocket {
					waitUntil(t, "upgraded", func() bool { return m.Transport() == client.TransportWebSocket })
				}
				for i, name := range names {
					hub.Of(name).Emit("tick", 0)
					logs[i].waitFor(t, "0")
				}

				cs.down()
				if err := cut.cut(cs, socks[0]); err != nil {
					t.Fatal(err)
				}
				for i := range socks {
					recv(t, lives[i].disconnects, "disconnect")
					recv(t, disconnects, "server disconnect")
				}
				for _, name := range names {
					for i := 1; i <= 5; i++ {
						hub.Of(name).Emit("tick", i)
					}
				}
				cs.up()
				for i, c := range socks {
					recv(t, lives[i].connects, "connect")
					recv(t, lives[i].connects, "reconnect of "+names[i])
					if !c.Recovered() || c.ID() != ids[i] {
						t.Fatalf("%s: recovered %v, id %q (was %q)", names[i], c.Recovered(), c.ID(), ids[i])
					}
				}
				for range socks {
					if sc := recv(t, connects, "server reconnect"); !sc.recovered {
						t.Fatalf("the server did not recover %+v", sc)
					}
				}
				for i, name := range names {
					hub.Of(name).Emit("tick", 6)
					hub.Of(name).Emit("tick", 7)
					logs[i].waitFor(t, "7")
					logs[i].check(t, []string{"connect " + ids[i], "0", "connect " + ids[i], "1", "2", "3", "4", "5", "6", "7"})
				}

				c := socks[0]
				c.Disconnect()
				<-c.Done()
				if sc := recv(t, disconnects, "server disconnect"); sc.reason != "client namespace disconnect" {
					t.Fatalf("server disconnect %+v", sc)
				}
				if err := c.Connect(ctxWait(t)); err != nil {
					t.Fatal(err)
				}
				if c.Recovered() || c.ID() == ids[0] {
					t.Fatalf("after Disconnect and Connect: recovered %v, id %q (was %q)", c.Recovered(), c.ID(), ids[0])
				}
				if sc := recv(t, connects, "server connect"); sc.recovered || sc.id != c.ID() {
					t.Fatalf("server: %+v", sc)
				}
			})
		}
	}
}

// A session kept longer than MaxDisconnectionDuration is not recovered.
func TestRecoveryRallyExpired(t *testing.T) {
	const keep = 300 * time.Millisecond
	hub, connects, disconnects := recoveryHub(keep)
	hub.On("cut", func(s *rally.Socket) { s.CloseConnection() })
	cs := newCutServer(t, hub)
	m := cs.manager(t, cs.opts(nil))
	c := m.Socket("/")
	lv, log := watch(c), logTicks(c)
	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, connects, "server connect")
	first := c.ID()
	hub.Emit("tick", 0)
	log.waitFor(t, "0")
	cs.down()
	c.Emit("cut")
	recv(t, lv.disconnects, "disconnect")
	recv(t, disconnects, "server disconnect")
	gone := time.Now()
	hub.Emit("tick", 1)
	// Wait out the session: the server forgets it keep after the
	// disconnect, which came before gone.
	time.Sleep(time.Until(gone.Add(keep + 200*time.Millisecond)))
	cs.up()
	recv(t, lv.connects, "connect")
	second := recv(t, lv.connects, "reconnect")
	if c.Recovered() || second == first {
		t.Fatalf("after expiry: recovered %v, id %q (was %q)", c.Recovered(), second, first)
	}
	if sc := recv(t, connects, "server reconnect"); sc.recovered {
		t.Fatalf("server recovered %+v", sc)
	}
	hub.Emit("tick", 2)
	log.waitFor(t, "2")
	log.check(t, []string{"connect " + first, "0", "connect " + second, "2"})
}

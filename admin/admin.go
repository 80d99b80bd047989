// Package admin is the server side of the official Socket.IO Admin UI
// (@socket.io/admin-ui 0.5): Instrument adds to a hub the admin namespace
// the UI connects to, as Node's instrument(io, opts) does, with the same
// events, commands and authentication.
//
//	inst, err := admin.Instrument(hub, &admin.Options{
//		Auth: &admin.BasicAuth{Username: "admin", PasswordHash: hash}, // bcrypt
//	})
//	if err != nil { … }
//	defer inst.Close()
//
// The UI is a static page. Use the hosted one at https://admin.socket.io,
// which connects from its own origin (list it in rally.Options.AllowedOrigins,
// with AllowCredentials, since the page sends its requests withCredentials),
// or serve the ui/dist directory of the npm package @socket.io/admin-ui
// yourself:
//
//	// npm install @socket.io/admin-ui@0.5.1
//	mux.Handle("/admin-ui/", http.StripPrefix("/admin-ui/",
//		http.FileServer(http.Dir("node_modules/@socket.io/admin-ui/ui/dist"))))
//
// then open /admin-ui/ and connect to the server's own URL. The page loads
// its fonts and icons from fonts.googleapis.com and cdn.jsdelivr.net.
//
// Behind an adapter that spans servers (redisadapter), instrument every
// server: each one emits its server_stats and notifications to the admin
// namespace through the adapter, so that the UI, connected to any of them,
// sees every server, and the UI's commands reach every socket
// (FetchSockets, SocketsJoin, SocketsLeave, DisconnectSockets). Give each
// server its own Options.ServerID when several run on one host.
package admin

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rallyhq/rally"
)

// Mode chooses what the admin namespace reports.
type Mode string

// The modes of Options.Mode.
const (
	// Development reports every socket: the all_sockets list when the UI
	// connects, and notifications of connections, disconnections, rooms
	// and events. It costs work for every event of every socket.
	Development Mode = "development"
	// Production reports server_stats only: counts, and the aggregated
	// connection, packet and byte figures of the dashboard's charts.
	Production Mode = "production"
)

// Options configures Instrument.
type Options struct {
	// Namespace is the admin namespace ("/admin").
	Namespace string
	// Auth, when set, requires the UI's username and password. Either
	// Auth or NoAuth must be set, as Node's auth option must be given
	// (auth: false to go without).
	Auth *BasicAuth
	// NoAuth lets anyone who can reach the admin namespace connect to it.
	NoAuth bool
	// ReadOnly refuses the UI's commands (emit, join, leave, disconnect):
	// it only watches.
	ReadOnly bool
	// Mode is Development (the default, as Node's without NODE_ENV) or
	// Production.
	Mode Mode
	// ServerID names this server in the UI's servers list. The default is
	// the host name, as Node's; set it when several servers run on one
	// host (Node's cluster workers use "hostname#pid").
	ServerID string
	// Store keeps the session ids the UI reconnects with after a basic
	// login; an in-memory store whose sessions last 24 hours when nil.
	// Servers behind a load balancer need a shared store, or sticky
	// sessions, for the UI to reconnect without a new login.
	Store Store
}

// BasicAuth is the username and password the UI must send.
type BasicAuth struct {
	// Username is compared as it is.
	Username string
	// PasswordHash is a bcrypt hash of the password, as made by
	// bcrypt.GenerateFromPassword (or Node's bcryptjs).
	PasswordHash string
}

// Instrumentation is an instrumented hub; Close stops it.
type Instrumentation struct {
	hub      *rally.Hub
	nsp      *rally.Namespace
	opts     Options
	features []string
	dev      bool
	serverID string
	hostname string

	buf     *eventBuffer
	tracker *tracker
	queue   chan func()
	dropped atomic.Bool   // notifications were dropped: resend all_sockets
	upgrade chan struct{} // a connection upgraded: look for its sockets

	sessMu   sync.Mutex
	sessions map[*rally.Socket]pendingSession // logins waiting for OnConnect

	closed    atomic.Bool
	stop      chan struct{}
	done      sync.WaitGroup
	unobserve func() // removes the hub observer
	closeOne  sync.Once
}

// pendingSession is the session id made for a socket at login, emitted
// once the socket is connected.
type pendingSession struct {
	id   string
	made time.Time
}

// queueSize bounds the notifications waiting to be emitted; past it they
// are dropped, and all_sockets is sent again once the queue drains.
const queueSize = 4096

// statsInterval is how often server_stats is emitted, as in Node.
const statsInterval = 2 * time.Second

// Instrument adds the admin namespace to hub and starts reporting to it.
// It fails when the options are unusable: no Auth and no NoAuth, both, or
// a PasswordHash that is not a bcrypt hash.
func Instrument(hub *rally.Hub, opts *Options) (*Instrumentation, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	switch {
	case o.Auth == nil && !o.NoAuth:
		return nil, errors.New("admin: Options.Auth must be set, or NoAuth to go without authentication")
	case o.Auth != nil && o.NoAuth:
		return nil, errors.New("admin: Options.Auth and NoAuth are both set")
	case o.Auth != nil:
		if _, err := bcrypt.Cost([]byte(o.Auth.PasswordHash)); err != nil {
			return nil, fmt.Errorf("admin: Options.Auth.PasswordHash must be a bcrypt hash: %w", err)
		}
	}
	if o.Namespace == "" {
		o.Namespace = "/admin"
	}
	switch o.Mode {
	case "":
		o.Mode = Development
	case Development, Production:
	default:
		return nil, fmt.Errorf("admin: unknown Options.Mode %q", o.Mode)
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(0)
	}
	hostname, _ := os.Hostname()
	if o.ServerID == "" {
		o.ServerID = hostname
	}

	in := &Instrumentation{
		hub:      hub,
		opts:     o,
		dev:      o.Mode == Development,
		serverID: o.ServerID,
		hostname: hostname,
		buf:      newEventBuffer(),
		queue:    make(chan func(), queueSize),
		upgrade:  make(chan struct{}, 1),
		sessions: make(map[*rally.Socket]pendingSession),
		stop:     make(chan struct{}),
	}
	if !o.ReadOnly {
		in.features = []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT"}
	}
	in.features = append(in.features, "AGGREGATED_EVENTS")
	if in.dev {
		in.features = append(in.features, "ALL_EVENTS")
		in.tracker = newTracker()
	}

	in.nsp = hub.Of(o.Namespace)
	in.nsp.Use(in.authenticate)
	in.nsp.OnConnect(in.onAdminConnect)
	if !o.ReadOnly {
		in.registerCommands()
	}
	in.unobserve = hub.Observe(in.observer())

	in.done.Add(2)
	go in.emitLoop()
	go in.statsLoop()
	return in, nil
}

// Namespace returns the admin namespace.
func (in *Instrumentation) Namespace() *rally.Namespace { return in.nsp }

// Close stops the reports: the hub's observer is removed, the stats
// ticker and the goroutine emitting notifications end, the admin
// namespace refuses new sockets and its sockets on this server are
// disconnected. The event listeners it added to namespaces stay, idle:
// the core cannot remove them.
func (in *Instrumentation) Close() {
	in.closeOne.Do(func() {
		in.unobserve()
		in.closed.Store(true)
		close(in.stop)
		in.done.Wait()
		in.nsp.All().Local().DisconnectSockets(false)
	})
}

// onAdminConnect greets a UI: its session id after a login, the
// supported features and, in development mode, every socket.
func (in *Instrumentation) onAdminConnect(s *rally.Socket) {
	in.sessMu.Lock()
	sess, ok := in.sessions[s]
	delete(in.sessions, s)
	in.sessMu.Unlock()
	if ok {
		s.Emit("session", sess.id)
	}
	s.Emit("config", map[string]any{"supportedFeatures": in.features})
	if in.dev {
		ctx, cancel := context.WithTimeout(s.Context(), 10*time.Second)
		defer cancel()
		s.Emit("all_sockets", in.allSockets(ctx))
	}
}

// enqueue hands a notification to the emitting goroutine, or drops it
// when too many wait (the UI then gets all_sockets again).
func (in *Instrumentation) enqueue(f func()) {
	if in.closed.Load() {
		return
	}
	select {
	case in.queue <- f:
	default:
		in.dropped.Store(true)
	}
}

// emitLoop emits the notifications, in order, until Close.
func (in *Instrumentation) emitLoop() {
	defer in.done.Done()
	for {
		select {
		case <-in.stop:
			return
		case f := <-in.queue:
			f()
		case <-in.upgrade:
			if in.tracker != nil {
				in.emitUpgrades()
			}
		}
		if len(in.queue) == 0 && in.dropped.Swap(false) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			in.nsp.Emit("all_sockets", in.allSockets(ctx))
			cancel()
		}
	}
}

// statsLoop emits server_stats at once and every two seconds until Close.
func (in *Instrumentation) statsLoop() {
	defer in.done.Done()
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		in.emitStats()
		select {
		case <-in.stop:
			return
		case <-t.C:
		}
	}
}

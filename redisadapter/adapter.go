package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/serial"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// adapter is the Redis adapter of one namespace.
type adapter struct {
	node    *Node
	client  redis.UniversalClient
	local   *rally.LocalAdapter
	log     *slog.Logger
	nsp     string
	uid     string
	timeout time.Duration

	channel            string // <key>#<nsp>#, broadcasts (plus <room># for one room)
	requestChannel     string // <key>-request#<nsp>#
	responseChannel    string // <key>-response#<nsp>#
	ownResponseChannel string // <key>-response#<nsp>#<uid>#

	ps     *redis.PubSub
	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	ready  chan struct{} // closed once the subscriptions are confirmed
	done   chan struct{} // closed when the subscriber loop ended

	pub     wire.Publisher // every message this server publishes, in order
	pubWarn wire.RateLog   // failed broadcasts nobody waits for

	mu      sync.Mutex
	closed  bool
	pending map[string]*pendingRequest // by requestId
	tasks   sync.WaitGroup             // publishes and the server event worker
	events  serial.Queue               // server events, one at a time
}

// pendingRequest is a request of this server waiting for answers.
type pendingRequest struct {
	answers chan msgpack.Map       // counted answers (fetch, rooms, server-side emit)
	handle  func(resp msgpack.Map) // broadcast with ack: client counts and acks
}

func newAdapter(n *Node, local *rally.LocalAdapter) *adapter {
	nsp := local.Namespace().Name()
	key := n.opts.Key
	a := &adapter{
		node:            n,
		client:          n.client,
		local:           local,
		nsp:             nsp,
		uid:             newID(),
		timeout:         n.opts.RequestsTimeout,
		channel:         key + "#" + nsp + "#",
		requestChannel:  key + "-request#" + nsp + "#",
		responseChannel: key + "-response#" + nsp + "#",
		ready:           make(chan struct{}),
		done:            make(chan struct{}),
		pending:         make(map[string]*pendingRequest),
	}
	a.events = serial.Queue{
		Start: func(drain func()) { a.tasks.Add(1); go drain() },
		Done:  a.tasks.Done,
	}
	a.ownResponseChannel = a.responseChannel + a.uid + "#"
	a.log = n.opts.Logger.With("namespace", nsp, "uid", a.uid)
	a.pubWarn.Every = 10 * time.Second
	a.pub = wire.Publisher{Client: n.client, Local: local, Timeout: a.timeout,
		Start:  a.goDrain,
		Warn:   func(msg string, args ...any) { a.pubWarn.Warn(a.log, msg, args...) },
		Closed: ErrClosed}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.ps = n.client.Subscribe(a.ctx)
	go a.run()
	return a
}

// run subscribes, then handles messages until the PubSub is closed. The
// client reconnects and subscribes again by itself when the connection
// breaks.
func (a *adapter) run() {
	defer close(a.done)
	if err := a.ps.PSubscribe(a.ctx, a.channel+"*"); err != nil && a.ctx.Err() == nil {
		a.log.Warn("redisadapter: subscribing (will retry on reconnection)", "error", err)
	}
	if err := a.ps.Subscribe(a.ctx, a.requestChannel, a.responseChannel, a.ownResponseChannel); err != nil && a.ctx.Err() == nil {
		a.log.Warn("redisadapter: subscribing (will retry on reconnection)", "error", err)
	}
	want := map[string]bool{a.channel + "*": true, a.requestChannel: true, a.responseChannel: true, a.ownResponseChannel: true}
	confirmed := make(map[string]bool)
	isReady := false
	for m := range a.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "psubscribe" || !want[m.Channel] {
				continue
			}
			if isReady {
				if m.Channel == a.requestChannel {
					a.log.Info("redisadapter: subscribed again after a reconnection")
				}
				continue
			}
			confirmed[m.Channel] = true
			if len(confirmed) == len(want) {
				isReady = true
				close(a.ready)
			}
		case *redis.Message:
			a.handle(m)
		}
	}
}

// handle dispatches one message. A message that cannot be decoded is
// logged and skipped.
func (a *adapter) handle(m *redis.Message) {
	if a.ctx.Err() != nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			a.log.Error("redisadapter: panic while handling a message", "channel", m.Channel, "panic", r)
		}
	}()
	payload := []byte(m.Payload)
	var err error
	switch ch := m.Channel; {
	case ch == a.requestChannel:
		err = a.onRequest(payload)
	case ch == a.responseChannel || ch == a.ownResponseChannel:
		err = a.onResponse(payload)
	case strings.HasPrefix(ch, a.channel):
		err = a.onBroadcast(ch, payload)
	default:
		return
	}
	wire.ReportReceive(a.local, err)
	if err != nil {
		a.log.Warn("redisadapter: skipping a malformed message", "channel", m.Channel, "error", err)
	}
}

// publish publishes behind the messages already queued and waits for it,
// within the requests timeout; it is reported to the hub's observers.
func (a *adapter) publish(ctx context.Context, channel string, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	return a.pub.Publish(ctx, channel, payload, true)
}

// goDrain runs the publisher's drain on a goroutine Close waits for, and
// reports false once the adapter is closed.
func (a *adapter) goDrain(drain func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		drain()
	}()
	return true
}

func (a *adapter) publishAsync(channel string, payload []byte) {
	a.goTask(func() {
		if err := a.publish(a.ctx, channel, payload); err != nil && a.ctx.Err() == nil {
			a.log.Warn("redisadapter: publishing an answer", "channel", channel, "error", err)
		}
	})
}

// goTask runs fn on a goroutine that Close waits for, unless the adapter
// is closed.
func (a *adapter) goTask(fn func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	a.tasks.Add(1)
	go func() {
		defer a.tasks.Done()
		fn()
	}()
}

// enqueueEvent runs server-side event handlers one at a time, in order of
// arrival, off the subscriber loop (a handler may itself wait for answers
// that arrive through the loop).
func (a *adapter) enqueueEvent(job func()) {
	a.mu.Lock()
	defer a.mu.Unlock() // held across Push: Close must not see tasks.Add after its Wait
	if a.closed {
		return
	}
	a.events.Push(func() {
		defer func() {
			if r := recover(); r != nil {
				a.log.Error("redisadapter: panic in a server-side event", "panic", r)
			}
		}()
		job()
	})
}

func (a *adapter) isPending(id string) bool {
	if id == "" {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pending[id] != nil
}

func (a *adapter) addPending(id string, p *pendingRequest) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	a.pending[id] = p
	return nil
}

func (a *adapter) removePending(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.pending, id)
}

// Close unsubscribes, closes the subscriber connection, fails the pending
// requests and waits (for at most the requests timeout) for the answers
// being published and the server-side event being handled.
func (a *adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.pending = make(map[string]*pendingRequest)
	a.mu.Unlock()
	a.node.forget(a)

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	unsubErr := errors.Join(a.ps.PUnsubscribe(ctx, a.channel+"*"),
		a.ps.Unsubscribe(ctx, a.requestChannel, a.responseChannel, a.ownResponseChannel))
	cancel()
	a.cancel()
	err := a.ps.Close()
	<-a.done

	finished := make(chan struct{})
	go func() {
		a.tasks.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(a.timeout):
		a.log.Warn("redisadapter: closing without waiting longer for a server-side event handler")
	}
	if err != nil {
		return fmt.Errorf("redisadapter: closing the subscription of %q: %w", a.nsp, err)
	}
	if unsubErr != nil {
		a.log.Debug("redisadapter: unsubscribing", "error", unsubErr)
	}
	return nil
}

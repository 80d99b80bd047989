// Package streams is a rally adapter on Redis Streams, wire-compatible with
// the Node package @socket.io/redis-streams-adapter 0.3: rally servers and
// Node Socket.IO 4.x servers with that adapter serve one application side
// by side, and with connection state recovery a client that lost its
// connection to one server recovers its session on any other.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	node := streams.New(client, nil)
//	hub := rally.NewHub(&rally.Options{
//		Adapter:                 node.Adapter,
//		ConnectionStateRecovery: &rally.Recovery{},
//	})
//
// Broadcasts and room changes go through one Redis stream (XADD with
// MAXLEN ~), which every server reads with XREAD BLOCK; requests that wait
// for answers (FetchSockets, ServerSideEmit, EmitWithAck) and their
// answers go through pub/sub, as with Node. The stream keeps the recent
// broadcasts, each with its entry id as offset: that is what lets a
// reconnecting client get the events it missed, from any server.
//
// It is a package of its own, next to redisadapter's classic pub/sub
// adapter, because it is another protocol with other options (a cluster
// uses one kind), as in Node, where it is another npm package.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// Options configures a Node. The zero value of every field takes the
// default of the Node adapter's option of the same name.
type Options struct {
	// StreamName is the Redis stream ("socket.io"); the same on every
	// server.
	StreamName string
	// MaxLen caps the stream, approximately (XADD MAXLEN ~), at 10,000
	// entries. A client can recover only if the last event it received
	// is still in the stream.
	MaxLen int64
	// ReadCount is the most entries one XREAD returns (100).
	ReadCount int64
	// BlockTime is how long an XREAD waits for entries (5s). Close waits
	// for the XREAD in progress when the client is not a *redis.Client
	// (which is unblocked at once).
	BlockTime time.Duration
	// SessionKeyPrefix prefixes the keys of the sessions kept for
	// connection state recovery ("sio:session:").
	SessionKeyPrefix string
	// ChannelPrefix prefixes the pub/sub channels of requests and answers
	// ("socket.io"): <prefix>#<nsp># and <prefix>#<nsp>#<uid>#.
	ChannelPrefix string
	// RequestsTimeout bounds the wait for the other servers' answers to
	// FetchSockets and ServerSideEmitWithAck (5s, Node's fixed delay), and
	// each command.
	RequestsTimeout time.Duration
	// MaxEntryBytes is the largest stream entry or pub/sub message that is
	// decoded (16 MiB); larger ones are skipped and logged.
	MaxEntryBytes int
	// Logger receives diagnostics: malformed or oversized entries (which
	// are skipped), Redis errors of the reader (which retries). Repeated
	// warnings are logged at most once a second. nil means
	// slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.StreamName == "" {
		out.StreamName = "socket.io"
	}
	if out.MaxLen <= 0 {
		out.MaxLen = 10_000
	}
	if out.ReadCount <= 0 {
		out.ReadCount = 100
	}
	if out.BlockTime <= 0 {
		out.BlockTime = 5 * time.Second
	}
	if out.SessionKeyPrefix == "" {
		out.SessionKeyPrefix = "sio:session:"
	}
	if out.ChannelPrefix == "" {
		out.ChannelPrefix = "socket.io"
	}
	if out.RequestsTimeout <= 0 {
		out.RequestsTimeout = 5 * time.Second
	}
	if out.MaxEntryBytes <= 0 {
		out.MaxEntryBytes = 16 << 20
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// ErrTimeout is wrapped by the error of a request that some servers did
// not answer within Options.RequestsTimeout. It is redisadapter.ErrTimeout.
var ErrTimeout = wire.ErrTimeout

// ErrClosed is returned by requests on a closed adapter. It is
// redisadapter.ErrClosed.
var ErrClosed = wire.ErrClosed

// Node is one server of a cluster sharing a Redis stream. It creates the
// adapter of each namespace of one Hub: pass its Adapter method as
// rally.Options.Adapter. Use one Node per Hub.
//
// A Node holds, while it has adapters, one reader of the stream (for every
// namespace, as in Node) and one pub/sub connection, subscribed per
// namespace to <prefix>#<nsp># and to its adapter's own <prefix>#<nsp>#<uid>#.
// Both are started in the background; Ready waits for them.
type Node struct {
	client redis.UniversalClient
	opts   Options
	log    *slog.Logger

	readLog, subLog, entryLog wire.RateLog

	mu       sync.Mutex
	closed   bool
	adapters map[string]*adapter // by namespace
	channels map[string]*adapter // by pub/sub channel
	run      *loops              // nil when no adapter is open
}

// New returns a Node that shares namespaces through client; nil opts take
// every default. The client must not be closed before the hub.
func New(client redis.UniversalClient, opts *Options) *Node {
	o := opts.withDefaults()
	n := &Node{client: client, opts: o, log: o.Logger,
		adapters: make(map[string]*adapter), channels: make(map[string]*adapter)}
	for _, r := range []*wire.RateLog{&n.readLog, &n.subLog, &n.entryLog} {
		r.Every = time.Second
	}
	return n
}

// Adapter creates the adapter of a namespace; it is meant for
// rally.Options.Adapter. The hub closes it on shutdown.
func (n *Node) Adapter(local *rally.LocalAdapter) rally.Adapter {
	a := newAdapter(n, local)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		a.Adapter.Close()
		close(a.ready)
		return a
	}
	if _, dup := n.adapters[a.nsp]; dup {
		a.log.Warn("redisadapter/streams: a Node serves this namespace twice; use one Node per Hub")
		close(a.ready)
		return a
	}
	n.adapters[a.nsp] = a
	n.channels[a.tr.public] = a
	n.channels[a.tr.private] = a
	if n.run == nil {
		n.run = n.start()
	}
	a.run = n.run
	a.subscribe()
	return a
}

// adapterOf returns the adapter of nsp, or nil.
func (n *Node) adapterOf(nsp string) *adapter {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adapters[nsp]
}

// forget removes a closed adapter; the last one stops the reader and the
// pub/sub connection, which it returns to be waited for.
func (n *Node) forget(a *adapter) *loops {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.adapters[a.nsp] != a {
		return nil
	}
	delete(n.adapters, a.nsp)
	delete(n.channels, a.tr.public)
	delete(n.channels, a.tr.private)
	if len(n.adapters) > 0 || n.run == nil {
		return nil
	}
	r := n.run
	n.run = nil
	return r
}

// Ready waits until the stream's reader has its starting point and Redis
// confirmed the subscriptions of every namespace created so far, so that
// this server hears what others publish and is counted by them.
func (n *Node) Ready(ctx context.Context) error {
	n.mu.Lock()
	adapters := make([]*adapter, 0, len(n.adapters))
	for _, a := range n.adapters {
		adapters = append(adapters, a)
	}
	n.mu.Unlock()
	for _, a := range adapters {
		select {
		case <-a.ready:
		case <-ctx.Done():
			return fmt.Errorf("redisadapter/streams: waiting for the subscriptions of %q: %w", a.nsp, ctx.Err())
		}
		select {
		case <-a.run.started:
		case <-ctx.Done():
			return fmt.Errorf("redisadapter/streams: waiting for the stream reader: %w", ctx.Err())
		}
	}
	return nil
}

// ServerCount returns how many servers serve a namespace: the number of
// connections subscribed to its channel <prefix>#<nsp># (PUBSUB NUMSUB,
// summed over the masters of a Redis Cluster), as Node counts them.
func (n *Node) ServerCount(ctx context.Context, nsp string) (int, error) {
	a := n.adapterOf(nsp)
	if a == nil {
		return 0, fmt.Errorf("redisadapter/streams: namespace %q has no adapter on this node", nsp)
	}
	return a.ServerCount(ctx)
}

// Close closes the adapters the hub did not close and stops the reader
// and the pub/sub connection. The hub's Shutdown closes the adapters too;
// Close is for a Node whose hub is gone, and is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	n.closed = true
	adapters := make([]*adapter, 0, len(n.adapters))
	for _, a := range n.adapters {
		adapters = append(adapters, a)
	}
	n.mu.Unlock()
	var errs []error
	for _, a := range adapters {
		errs = append(errs, a.Close())
	}
	return errors.Join(errs...)
}

// dispatch hands a decoded message to the adapter of its namespace.
func (n *Node) dispatch(m *cluster.Message, offset string) {
	a := n.adapterOf(m.NSP)
	if a == nil {
		return
	}
	if err := a.OnMessage(m, offset); err != nil {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping a message that cannot be handled", "type", int(m.Type), "error", err)
	}
}

// onChannelMessage decodes a pub/sub message and hands it to its adapter.
func (n *Node) onChannelMessage(msg *redis.Message) {
	n.mu.Lock()
	a := n.channels[msg.Channel]
	n.mu.Unlock()
	if a == nil {
		return
	}
	if len(msg.Payload) > n.opts.MaxEntryBytes {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping an oversized message", "channel", msg.Channel, "bytes", len(msg.Payload))
		wire.ReportReceive(a.Local(), errOversized)
		return
	}
	m, err := cluster.Unmarshal([]byte(msg.Payload))
	if err != nil {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping a malformed message", "channel", msg.Channel, "error", err)
		wire.ReportReceive(a.Local(), err)
		return
	}
	if err := a.OnMessage(m, ""); err != nil {
		n.entryLog.Warn(a.log, "redisadapter/streams: skipping a message that cannot be handled", "channel", msg.Channel, "type", int(m.Type), "error", err)
	}
}

// numSub counts the subscribers of a channel; on a Redis Cluster, summed
// over the masters as the Node adapter does.
func numSub(ctx context.Context, client redis.UniversalClient, channel string) (int, error) {
	if cc, ok := client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			m, err := c.PubSubNumSub(ctx, channel).Result()
			mu.Lock()
			total += int(m[channel])
			mu.Unlock()
			return err
		})
		return total, err
	}
	m, err := client.PubSubNumSub(ctx, channel).Result()
	return int(m[channel]), err
}

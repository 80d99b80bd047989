// Package sharded is a rally adapter on Redis 7 sharded pub/sub (SPUBLISH,
// SSUBSCRIBE), wire-compatible with createShardedAdapter of the Node
// package @socket.io/redis-adapter 8.3: rally servers and Node Socket.IO
// 4.x servers with that adapter serve one application side by side, on a
// Redis Cluster or a single Redis 7 server.
//
//	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
//	node := sharded.New(client, nil)
//	hub := rally.NewHub(&rally.Options{Adapter: node.Adapter})
//	hub.Observe(node.Observer()) // room channels follow the rooms at once
//
// On a Redis Cluster a classic PUBLISH is copied to every node, so the
// classic adapter's traffic grows with the cluster; a shard channel lives
// on the node that serves its hash slot only. Each namespace has its
// channel <prefix>#<nsp>#, each server its response channel
// <prefix>#<nsp>#<uid>#, and in the dynamic subscription modes each room
// its channel <prefix>#<nsp>#<room>#, which only the servers with sockets
// in the room subscribe to: broadcasts to one room reach only them.
//
// It is a package of its own, next to redisadapter's classic adapter,
// because it is another protocol (socket.io-adapter's ClusterAdapter, as
// the streams adapter): a cluster uses one adapter kind.
package sharded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// SubscriptionMode says which rooms have a channel of their own, as the
// Node option subscriptionMode.
type SubscriptionMode string

// The subscription modes of the Node adapter.
const (
	// Static: one channel per namespace; every broadcast reaches every
	// server of the namespace.
	Static SubscriptionMode = "static"
	// Dynamic (the default): a broadcast to exactly one room that is not
	// a socket id (20 characters) goes on the room's channel, which the
	// servers with sockets in that room subscribe to.
	Dynamic SubscriptionMode = "dynamic"
	// DynamicPrivate: as Dynamic, socket id rooms included: a server
	// subscribes to a channel per socket too.
	DynamicPrivate SubscriptionMode = "dynamic-private"
)

// Options configures a Node. The zero value of every field takes the
// default of the Node adapter's option of the same name.
type Options struct {
	// ChannelPrefix prefixes every channel ("socket.io"); the same on
	// every server.
	ChannelPrefix string
	// SubscriptionMode says which rooms have a channel (Dynamic); the
	// same on every server.
	SubscriptionMode SubscriptionMode
	// RequestsTimeout bounds the wait for the other servers' answers to
	// FetchSockets and ServerSideEmitWithAck (5s, Node's), and each
	// command.
	RequestsTimeout time.Duration
	// Logger receives diagnostics: malformed messages (skipped), lost
	// subscriptions (restored). Repeated warnings are logged at most once
	// a second. nil means slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() (Options, error) {
	var out Options
	if o != nil {
		out = *o
	}
	if out.ChannelPrefix == "" {
		out.ChannelPrefix = "socket.io"
	}
	switch out.SubscriptionMode {
	case "":
		out.SubscriptionMode = Dynamic
	case Static, Dynamic, DynamicPrivate:
	default:
		return out, fmt.Errorf("redisadapter/sharded: unknown subscription mode %q", out.SubscriptionMode)
	}
	if out.RequestsTimeout <= 0 {
		out.RequestsTimeout = 5 * time.Second
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out, nil
}

// ErrTimeout is wrapped by the error of a request that some servers did
// not answer within Options.RequestsTimeout. It is redisadapter.ErrTimeout.
var ErrTimeout = wire.ErrTimeout

// ErrClosed is returned by requests on a closed adapter. It is
// redisadapter.ErrClosed.
var ErrClosed = wire.ErrClosed

// ErrPublishQueueFull is returned by a broadcast when the messages waiting
// to be published are beyond the adapter's bounds (10,000, or 64 MiB):
// Redis is slower than the broadcasts, or unreachable. It is
// redisadapter.ErrPublishQueueFull.
var ErrPublishQueueFull = wire.ErrPublishQueueFull

// roomPoll is how often a Node whose Observer is not registered looks for
// rooms created or deleted.
const roomPoll = time.Second

// Node is one server of a cluster sharing Redis sharded pub/sub. It
// creates the adapter of each namespace of one Hub: pass its Adapter
// method as rally.Options.Adapter, and in the dynamic modes register its
// Observer with hub.Observe. Use one Node per Hub.
type Node struct {
	client   redis.UniversalClient
	opts     Options
	log      *slog.Logger
	subs     *subscriber
	observed atomic.Bool
	msgLog   wire.RateLog

	mu       sync.Mutex
	closed   bool
	adapters map[string]*adapter // by namespace
	channels map[string]*adapter // by channel
}

// New returns a Node that shares namespaces through client: a
// *redis.ClusterClient, or a client of one Redis 7 server. nil opts take
// every default. It panics on an unknown Options.SubscriptionMode. The
// client must not be closed before the hub.
func New(client redis.UniversalClient, opts *Options) *Node {
	o, err := opts.withDefaults()
	if err != nil {
		panic(err)
	}
	n := &Node{client: client, opts: o, log: o.Logger,
		adapters: make(map[string]*adapter), channels: make(map[string]*adapter)}
	n.msgLog.Every = time.Second
	n.subs = newSubscriber(client, o.Logger, n.onChannelMessage)
	return n
}

// Adapter creates the adapter of a namespace; it is meant for
// rally.Options.Adapter. The hub closes it on shutdown.
func (n *Node) Adapter(local *rally.LocalAdapter) rally.Adapter {
	a := newAdapter(n, local)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		a.Adapter.Close()
		return a
	}
	if _, dup := n.adapters[a.nsp]; dup {
		n.mu.Unlock()
		a.log.Warn("redisadapter/sharded: a Node serves this namespace twice; use one Node per Hub")
		a.Adapter.Close()
		return a
	}
	n.adapters[a.nsp] = a
	n.channels[a.channel] = a
	n.channels[a.response] = a
	n.mu.Unlock()
	a.start()
	return a
}

// Observer returns the observer that tells the Node when sockets join and
// leave rooms, for hub.Observe, so that in the dynamic modes a server
// subscribes to a room's channel as soon as one of its sockets joins the
// room (and unsubscribes when the last one leaves), as Node does on its
// adapter's create-room and delete-room events. Without it, the Node looks
// for new and deleted rooms once a second, and broadcasts to a room that
// reach a server before it subscribed are lost. It is not needed in the
// Static mode.
func (n *Node) Observer() *rally.Observer {
	return &rally.Observer{
		NamespaceCreated: func(*rally.Namespace) { n.observed.Store(true) },
		RoomJoined:       n.roomChanged,
		RoomLeft:         n.roomChanged,
	}
}

func (n *Node) roomChanged(s *rally.Socket, room string) {
	if a := n.adapterOf(s.Namespace().Name()); a != nil {
		a.roomChanged(room)
	}
}

// adapterOf returns the adapter of nsp, or nil.
func (n *Node) adapterOf(nsp string) *adapter {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.adapters[nsp]
}

// route makes channel's messages go to a, or nowhere when a is nil.
func (n *Node) route(channel string, a *adapter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if a == nil {
		delete(n.channels, channel)
	} else {
		n.channels[channel] = a
	}
}

// forget removes a closing adapter, and reports whether it was the last.
func (n *Node) forget(a *adapter) (known, last bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.adapters[a.nsp] != a {
		return false, false
	}
	delete(n.adapters, a.nsp)
	for ch, x := range n.channels {
		if x == a {
			delete(n.channels, ch)
		}
	}
	return true, len(n.adapters) == 0
}

// Ready waits until Redis confirmed the subscriptions to the namespace and
// response channels of every namespace created so far, so that this server
// hears what others publish and is counted by them.
func (n *Node) Ready(ctx context.Context) error {
	n.mu.Lock()
	adapters := make([]*adapter, 0, len(n.adapters))
	for _, a := range n.adapters {
		adapters = append(adapters, a)
	}
	n.mu.Unlock()
	for _, a := range adapters {
		for _, c := range a.ready {
			select {
			case <-c:
			case <-ctx.Done():
				return fmt.Errorf("redisadapter/sharded: waiting for the subscriptions of %q: %w", a.nsp, ctx.Err())
			}
		}
	}
	return nil
}

// ServerCount returns how many servers serve a namespace: the number of
// connections subscribed to its channel (PUBSUB SHARDNUMSUB, summed over
// the nodes of a Redis Cluster, replicas included).
func (n *Node) ServerCount(ctx context.Context, nsp string) (int, error) {
	a := n.adapterOf(nsp)
	if a == nil {
		return 0, fmt.Errorf("redisadapter/sharded: namespace %q has no adapter on this node", nsp)
	}
	return a.ServerCount(ctx)
}

// Close closes the adapters the hub did not close, which ends every
// subscription. The hub's Shutdown closes the adapters too; Close is for a
// Node whose hub is gone, and is idempotent.
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

// onChannelMessage decodes a message and hands it to the adapter of its
// channel.
func (n *Node) onChannelMessage(channel, payload string) {
	n.mu.Lock()
	a := n.channels[channel]
	n.mu.Unlock()
	if a == nil {
		return
	}
	m, err := cluster.Decode([]byte(payload))
	if err != nil {
		n.msgLog.Warn(a.log, "redisadapter/sharded: skipping a malformed message", "channel", channel, "error", err)
		wire.ReportReceive(a.Local(), err)
		return
	}
	if err := a.OnMessage(m, ""); err != nil {
		n.msgLog.Warn(a.log, "redisadapter/sharded: skipping a message that cannot be handled", "channel", channel, "type", int(m.Type), "error", err)
	}
}

// shardNumSub counts the subscribers of a shard channel; on a Redis
// Cluster, summed over every node. The Node adapter sums over the masters
// only; a replica delivers its shard's messages too, and node-redis may
// subscribe on one (it reconnects to a failed master's address, where the
// node comes back as a replica), so rally counts those servers as well.
func shardNumSub(ctx context.Context, client redis.UniversalClient, channel string) (int, error) {
	if cc, ok := client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			m, err := c.PubSubShardNumSub(ctx, channel).Result()
			mu.Lock()
			total += int(m[channel])
			mu.Unlock()
			return err
		})
		return total, err
	}
	m, err := client.PubSubShardNumSub(ctx, channel).Result()
	return int(m[channel]), err
}

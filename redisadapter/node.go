// Package redisadapter lets several rally servers share rooms, broadcasts
// and the other adapter operations through Redis pub/sub, speaking the
// wire format of the Node packages @socket.io/redis-adapter 8.x and
// @socket.io/redis-emitter 5.x: rally and Node Socket.IO servers can serve
// one application side by side on the same Redis.
//
//	client := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	node := redisadapter.New(client, nil)
//	hub := rally.NewHub(&rally.Options{Adapter: node.Adapter})
//
// Every rally operation then spans the servers: broadcasts (To, Except,
// Volatile), EmitWithAck, SocketsJoin, SocketsLeave, DisconnectSockets,
// FetchSockets and ServerSideEmit[WithAck]. Operations on Local() stay on
// this server.
//
// An Emitter publishes from a process that serves no clients, as
// @socket.io/redis-emitter does.
//
// The subpackage streams is the Redis Streams adapter, compatible with
// @socket.io/redis-streams-adapter 0.3, which also supports connection
// state recovery across servers.
package redisadapter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// Options configures a Node or an Emitter. The zero value of every field
// takes the Node adapter's default.
type Options struct {
	// Key prefixes every channel name ("socket.io"). Every server and
	// emitter of an application must use the same key.
	Key string
	// RequestsTimeout bounds the wait for the other servers' answers to
	// FetchSockets, ServerSideEmitWithAck and AllRooms (5s), and each
	// publish. Not used by the Emitter.
	RequestsTimeout time.Duration
	// PublishOnSpecificResponseChannel sends answers to requests on the
	// requesting server's own response channel rather than on the shared
	// one, as the Node option of that name does (default false). Not
	// used by the Emitter.
	PublishOnSpecificResponseChannel bool
	// Logger receives diagnostics: malformed messages (which are skipped),
	// failed publishes, subscriptions restored after a reconnection. nil
	// means slog.Default(). Not used by the Emitter.
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Key == "" {
		out.Key = "socket.io"
	}
	if out.RequestsTimeout <= 0 {
		out.RequestsTimeout = 5 * time.Second
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// ErrTimeout is wrapped by the error of a request that some servers did
// not answer within Options.RequestsTimeout (a server that died while
// still counted as subscribed, for instance). The streams adapter's
// timeouts wrap it too.
var ErrTimeout = wire.ErrTimeout

// ErrClosed is returned by operations on an adapter that was closed.
var ErrClosed = wire.ErrClosed

// ErrPublishQueueFull is returned by a broadcast when the messages waiting
// to be published to Redis are beyond the adapter's bounds (10,000, or
// 64 MiB): Redis is slower than the broadcasts, or unreachable. The
// sharded adapter's is the same error.
var ErrPublishQueueFull = wire.ErrPublishQueueFull

type timeoutError = wire.TimeoutError

// Node is one server of a cluster sharing Redis. It creates the adapter of
// each namespace of one Hub: pass its Adapter method as
// rally.Options.Adapter. Use one Node per Hub.
//
// Each namespace's adapter holds one subscriber connection of its own
// (PSUBSCRIBE <key>#<nsp>#*, SUBSCRIBE <key>-request#<nsp>#,
// <key>-response#<nsp># and <key>-response#<nsp>#<uid>#) and publishes
// through the client's pool. Subscriptions are made in the background and
// restored by the client after a reconnection; Ready waits for them.
type Node struct {
	client redis.UniversalClient
	opts   Options

	mu       sync.Mutex
	adapters map[string]*adapter
}

// New returns a Node that shares namespaces through client; nil opts take
// every default. The client must not be closed before the hub.
func New(client redis.UniversalClient, opts *Options) *Node {
	return &Node{client: client, opts: opts.withDefaults(), adapters: make(map[string]*adapter)}
}

// Adapter creates the adapter of a namespace; it is meant for
// rally.Options.Adapter. The hub closes it on shutdown.
func (n *Node) Adapter(local *rally.LocalAdapter) rally.Adapter {
	a := newAdapter(n, local)
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.adapters[a.nsp]; dup {
		a.log.Warn("redisadapter: a Node serves this namespace twice; use one Node per Hub")
	} else {
		n.adapters[a.nsp] = a
	}
	return a
}

func (n *Node) forget(a *adapter) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.adapters[a.nsp] == a {
		delete(n.adapters, a.nsp)
	}
}

func (n *Node) adapter(nsp string) (*adapter, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.adapters[nsp]
	if a == nil {
		return nil, fmt.Errorf("redisadapter: namespace %q has no adapter on this node", nsp)
	}
	return a, nil
}

// Ready waits until the subscriptions of every namespace created so far
// are confirmed by Redis, so that this server hears what others publish
// and is counted by them.
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
			return fmt.Errorf("redisadapter: waiting for the subscriptions of %q: %w", a.nsp, ctx.Err())
		}
	}
	return nil
}

// AllRooms returns the names of the rooms of a namespace on every server,
// socket id rooms included (the Node adapter's allRooms).
func (n *Node) AllRooms(ctx context.Context, nsp string) ([]string, error) {
	a, err := n.adapter(nsp)
	if err != nil {
		return nil, err
	}
	return a.allRooms(ctx)
}

// ServerCount returns how many servers serve a namespace: the number of
// connections subscribed to its request channel (PUBSUB NUMSUB), this
// server included once its subscriptions are made.
func (n *Node) ServerCount(ctx context.Context, nsp string) (int, error) {
	a, err := n.adapter(nsp)
	if err != nil {
		return 0, err
	}
	return a.serverCount(ctx)
}

// numSub counts the subscribers of a channel; on a Redis Cluster, summed
// over every node, replicas included: PUBLISH reaches the whole cluster,
// so a server may subscribe on any node (node-redis's cluster client picks
// a random one, replicas included), and each node counts only its own
// subscribers. The Node adapter sums over the masters only, and misses
// the servers subscribed on a replica.
func numSub(ctx context.Context, client redis.UniversalClient, channel string) (int, error) {
	if cc, ok := client.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
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

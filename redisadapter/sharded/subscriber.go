package sharded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// healthEvery is how long a subscription connection may stay silent before
// it is pinged; a ping not answered within healthEvery drops the
// connection.
const healthEvery = 3 * time.Second

// subscriber holds a Node's shard channel subscriptions. Redis refuses one
// SSUBSCRIBE for channels of different hash slots, and go-redis subscribes
// all the channels of a PubSub again in one command when it reconnects, so
// the channels are grouped by slot: one PubSub, and one goroutine receiving
// from it, per slot in use (one for every channel with a client that is
// not a cluster client).
//
// A group whose connection fails, or whose node stops serving its slot
// (the "sunsubscribe" Redis 7 sends when a slot moves), drops its PubSub,
// asks the cluster client to reload the slot map, and subscribes again on a
// new PubSub, which connects to the slot's master as the map then says:
// after a failover, the promoted replica.
type subscriber struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil when client is not a cluster client
	log     *slog.Logger
	deliver func(channel, payload string)
	warn    wire.RateLog

	mu     sync.Mutex
	groups map[int]*group // by slot, -1 without a cluster
	wg     sync.WaitGroup // the groups' goroutines
}

// group is the subscription of the channels of one slot.
type group struct {
	s      *subscriber
	key    int
	ctx    context.Context // ends when the group has no channel left
	cancel context.CancelFunc

	// used by the group's goroutine only
	at      string // the master the PubSub was made for
	suspect string // the master of the last failure

	// guarded by s.mu
	ps   *redis.PubSub // nil while connecting
	want map[string]*channelState
}

// channelState is a channel a group must be subscribed to.
type channelState struct {
	confirmed chan struct{} // closed at the first confirmation by Redis
	done      bool
}

func newSubscriber(client redis.UniversalClient, log *slog.Logger, deliver func(channel, payload string)) *subscriber {
	s := &subscriber{client: client, log: log, deliver: deliver, groups: make(map[int]*group)}
	s.cluster, _ = client.(*redis.ClusterClient)
	s.warn.Every = time.Second
	return s
}

func (s *subscriber) key(channel string) int {
	if s.cluster == nil {
		return -1
	}
	return slot(channel)
}

// add subscribes to channel in the background and returns a channel closed
// once Redis confirmed the subscription.
func (s *subscriber) add(channel string) <-chan struct{} {
	s.mu.Lock()
	g := s.groups[s.key(channel)]
	if g == nil {
		g = &group{s: s, key: s.key(channel), want: make(map[string]*channelState)}
		g.ctx, g.cancel = context.WithCancel(context.Background())
		s.groups[g.key] = g
		s.wg.Add(1)
		go g.run()
	}
	if st := g.want[channel]; st != nil {
		s.mu.Unlock()
		return st.confirmed
	}
	st := &channelState{confirmed: make(chan struct{})}
	g.want[channel] = st
	ps := g.ps
	s.mu.Unlock()
	if ps != nil {
		// On failure the group's loop sees the connection fail and
		// subscribes again to every channel it wants, this one included.
		if err := ps.SSubscribe(g.ctx, channel); err != nil && g.ctx.Err() == nil {
			s.log.Debug("redisadapter/sharded: SSUBSCRIBE (the subscription is retried)", "channel", channel, "error", err)
		}
	}
	return st.confirmed
}

// remove unsubscribes from channel; a group left without channels stops.
func (s *subscriber) remove(ctx context.Context, channel string) {
	s.mu.Lock()
	g := s.groups[s.key(channel)]
	if g == nil || g.want[channel] == nil {
		s.mu.Unlock()
		return
	}
	delete(g.want, channel)
	ps := g.ps
	if len(g.want) == 0 {
		delete(s.groups, g.key)
		g.cancel()
		g.ps = nil
		s.mu.Unlock()
		if ps != nil {
			ps.Close() // unblocks the receiving goroutine
		}
		return
	}
	s.mu.Unlock()
	if ps != nil {
		if err := ps.SUnsubscribe(ctx, channel); err != nil && g.ctx.Err() == nil {
			s.log.Debug("redisadapter/sharded: SUNSUBSCRIBE", "channel", channel, "error", err)
		}
	}
}

// wait waits for the goroutines of the groups, which end once every channel
// was removed.
func (s *subscriber) wait() { s.wg.Wait() }

// reload asks the cluster client to read the slot map again.
func (s *subscriber) reload() {
	if s.cluster != nil {
		s.cluster.ReloadState(context.Background())
	}
}

// run receives the group's messages until the group stops, connecting
// again after every failure.
func (g *group) run() {
	defer g.s.wg.Done()
	var delay backoff
	var ps *redis.PubSub
	again := false  // a subscription was lost and not confirmed since
	pinged := false // a ping is unanswered
	fail := func(msg string, err error) {
		again, pinged = true, false
		g.suspect = g.at
		g.s.warn.Warn(g.s.log, msg, "slot", g.key, "error", err)
		g.s.reload()
		g.drop(ps)
		ps = nil
		g.sleep(delay.next())
	}
	for g.ctx.Err() == nil {
		if ps == nil {
			var err error
			if ps, err = g.connect(); err != nil {
				if g.ctx.Err() == nil {
					fail("redisadapter/sharded: subscribing (retrying)", err)
				}
				continue
			}
		}
		msg, err := ps.ReceiveTimeout(g.ctx, healthEvery)
		if err != nil {
			if g.ctx.Err() != nil {
				break
			}
			if isTimeout(err) && !pinged {
				if err = ps.Ping(g.ctx); err == nil {
					pinged = true
					continue
				}
			}
			if isTimeout(err) {
				err = errNoPong
			}
			fail("redisadapter/sharded: shard subscription lost (subscribing again)", err)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Message:
			g.s.deliver(m.Channel, m.Payload)
		case *redis.Subscription:
			switch m.Kind {
			case "ssubscribe":
				delay = 0
				if g.confirm(m.Channel) && again {
					again = false
					g.s.log.Info("redisadapter/sharded: subscribed again after a failure", "channel", m.Channel, "slot", g.key)
				}
			case "sunsubscribe":
				if g.wanted(m.Channel) {
					// Redis dropped it: the slot moved to another node.
					fail("redisadapter/sharded: Redis ended a shard subscription (subscribing again)", errSlotMoved)
				}
			}
		}
	}
	g.drop(ps)
}

var (
	errSlotMoved = errors.New("the node no longer serves the channel's slot")
	errNoPong    = fmt.Errorf("no answer to a ping within %v", healthEvery)
)

// connect makes a new PubSub for the group and subscribes to its channels.
// When the slot map still names the master that failed last, that master
// must answer a ping first: a hung node accepts connections, and would
// hold the subscription until the next health check.
func (g *group) connect() (*redis.PubSub, error) {
	s := g.s
	if s.cluster != nil {
		s.mu.Lock()
		var first string
		for ch := range g.want {
			first = ch
			break
		}
		s.mu.Unlock()
		if first == "" {
			return nil, errors.New("no channel to subscribe to")
		}
		m, err := s.cluster.MasterForKey(g.ctx, first)
		if err != nil {
			return nil, err
		}
		g.at = m.Options().Addr
		if g.at == g.suspect {
			ctx, cancel := context.WithTimeout(g.ctx, time.Second)
			err := m.Ping(ctx).Err()
			cancel()
			if err != nil {
				return nil, fmt.Errorf("the slot's master %s, which failed, does not answer: %w", g.at, err)
			}
		}
	}
	s.mu.Lock()
	if g.ctx.Err() != nil {
		s.mu.Unlock()
		return nil, g.ctx.Err()
	}
	ps := s.client.SSubscribe(g.ctx) // no channel: not connected yet
	g.ps = ps
	channels := slices.Sorted(maps.Keys(g.want))
	for _, st := range g.want {
		st.done = false
	}
	s.mu.Unlock()
	if len(channels) == 0 {
		return ps, nil
	}
	if err := ps.SSubscribe(g.ctx, channels...); err != nil {
		return nil, errors.Join(err, g.drop(ps))
	}
	return ps, nil
}

// drop closes ps, the group's PubSub or a former one.
func (g *group) drop(ps *redis.PubSub) error {
	if ps == nil {
		return nil
	}
	g.s.mu.Lock()
	if g.ps == ps {
		g.ps = nil
	}
	g.s.mu.Unlock()
	return ps.Close()
}

// confirm records Redis's confirmation of channel, and reports whether the
// channel is still wanted.
func (g *group) confirm(channel string) bool {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	st := g.want[channel]
	if st == nil {
		return false
	}
	if !st.done {
		st.done = true
		select {
		case <-st.confirmed:
		default:
			close(st.confirmed)
		}
	}
	return true
}

// wanted reports whether the group must still be subscribed to channel.
func (g *group) wanted(channel string) bool {
	g.s.mu.Lock()
	defer g.s.mu.Unlock()
	return g.want[channel] != nil
}

// sleep waits for d or until the group stops.
func (g *group) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-g.ctx.Done():
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// backoff doubles a retry delay from 50ms up to 1s.
type backoff time.Duration

func (b *backoff) next() time.Duration {
	*b = backoff(min(max(2*time.Duration(*b), 50*time.Millisecond), time.Second))
	return time.Duration(*b)
}

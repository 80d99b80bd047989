package streams

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// loops are the stream reader and the pub/sub receiver a Node runs while
// it has adapters.
type loops struct {
	n       *Node
	ctx     context.Context
	cancel  context.CancelFunc
	ps      *redis.PubSub
	started chan struct{} // closed once the reader knows where to start
	wg      sync.WaitGroup

	mu      sync.Mutex
	waiting map[string]*adapter // channels whose subscription is not confirmed yet
	connID  int64               // the reader's connection (CLIENT ID), 0 if none
}

func (n *Node) start() *loops {
	ctx, cancel := context.WithCancel(context.Background())
	r := &loops{n: n, ctx: ctx, cancel: cancel, ps: n.client.Subscribe(ctx),
		started: make(chan struct{}), waiting: make(map[string]*adapter)}
	r.wg.Add(2)
	go r.read()
	go r.receive()
	return r
}

// stop ends both loops and waits for them. An XREAD in progress is
// unblocked (CLIENT UNBLOCK) when the reader has a connection of its own.
func (r *loops) stop() {
	r.cancel()
	r.ps.Close()
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		id := r.connID
		r.mu.Unlock()
		if id != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			r.n.client.ClientUnblock(ctx, id)
			cancel()
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}

// sleep waits for d, or reports false when the loops are stopped.
func (r *loops) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// backoff doubles a retry delay from 50ms up to 2s.
type backoff time.Duration

func (b *backoff) next() time.Duration {
	*b = backoff(min(max(2*time.Duration(*b), 50*time.Millisecond), 2*time.Second))
	return time.Duration(*b)
}

// read reads the stream from its last entry at start, then from the last
// entry read, one XREAD BLOCK after another, and dispatches each entry to
// the adapter of its namespace. Redis errors are logged and retried from
// the same entry.
func (r *loops) read() {
	defer r.wg.Done()
	n := r.n
	stream := n.opts.StreamName
	var delay backoff
	var last string
	for {
		// The last entry's id, or 0-0 for an empty stream: what "$"
		// means, fixed before Ready, so that nothing published after
		// Ready is missed.
		msgs, err := n.client.XRevRangeN(r.ctx, stream, "+", "-", 1).Result()
		if err == nil {
			last = "0-0"
			if len(msgs) > 0 {
				last = msgs[0].ID
			}
			break
		}
		if r.ctx.Err() != nil {
			return
		}
		n.readLog.Warn(n.log, "redisadapter/streams: reading the end of the stream (retrying)", "stream", stream, "error", err)
		if !r.sleep(delay.next()) {
			return
		}
	}
	close(r.started)

	var conn *redis.Conn
	dropConn := func() {
		if conn != nil {
			conn.Close()
			conn = nil
			r.setConnID(0)
		}
	}
	defer dropConn()
	for r.ctx.Err() == nil {
		var cmd redis.Cmdable = n.client
		if c, ok := n.client.(*redis.Client); ok {
			if conn == nil {
				conn = c.Conn()
				id, err := conn.ClientID(r.ctx).Result()
				if err != nil {
					dropConn()
					if r.ctx.Err() == nil {
						n.readLog.Warn(n.log, "redisadapter/streams: connecting the stream reader (retrying)", "error", err)
						r.sleep(delay.next())
					}
					continue
				}
				r.setConnID(id)
			}
			cmd = conn
		}
		res, err := cmd.XRead(r.ctx, &redis.XReadArgs{
			Streams: []string{stream, last}, Count: n.opts.ReadCount, Block: n.opts.BlockTime,
		}).Result()
		if errors.Is(err, redis.Nil) {
			continue // nothing within the block time, or unblocked
		}
		if err != nil {
			if r.ctx.Err() != nil {
				return
			}
			dropConn()
			n.readLog.Warn(n.log, "redisadapter/streams: reading the stream (retrying from the last entry read)", "stream", stream, "after", last, "error", err)
			r.sleep(delay.next())
			continue
		}
		delay = 0
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				n.onEntry(m)
			}
		}
	}
}

func (r *loops) setConnID(id int64) {
	r.mu.Lock()
	r.connID = id
	r.mu.Unlock()
}

// receive handles pub/sub messages and subscription confirmations until
// the PubSub is closed. go-redis reconnects and subscribes again by
// itself.
func (r *loops) receive() {
	defer r.wg.Done()
	for m := range r.ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				r.confirmed(m.Channel)
			}
		case *redis.Message:
			r.n.onChannelMessage(m)
		}
	}
}

// confirmed marks a channel's subscription as confirmed; an adapter is
// ready once both of its channels are.
func (r *loops) confirmed(channel string) {
	r.mu.Lock()
	a := r.waiting[channel]
	delete(r.waiting, channel)
	ready := false
	if a != nil {
		a.subsLeft--
		ready = a.subsLeft == 0
	}
	r.mu.Unlock()
	if ready {
		close(a.ready)
	}
}

// subscribe subscribes to a's channels in the background.
func (r *loops) subscribe(a *adapter) {
	r.mu.Lock()
	a.subsLeft = 2
	r.waiting[a.tr.public] = a
	r.waiting[a.tr.private] = a
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := r.ps.Subscribe(r.ctx, a.tr.public, a.tr.private); err != nil && r.ctx.Err() == nil {
			a.log.Warn("redisadapter/streams: subscribing (will retry on reconnection)", "error", err)
		}
	}()
}

// unsubscribe drops a's channels.
func (r *loops) unsubscribe(a *adapter) {
	r.mu.Lock()
	delete(r.waiting, a.tr.public)
	delete(r.waiting, a.tr.private)
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, time.Second)
	defer cancel()
	if err := r.ps.Unsubscribe(ctx, a.tr.public, a.tr.private); err != nil && r.ctx.Err() == nil {
		a.log.Debug("redisadapter/streams: unsubscribing", "error", err)
	}
}

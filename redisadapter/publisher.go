package redisadapter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
	"github.com/redis/go-redis/v9"
)

// Bounds of a namespace's publish queue: a broadcast that would go beyond
// either fails at once with ErrPublishQueueFull rather than holding memory
// while Redis is slow or away.
const (
	maxQueuedPublishes     = 10_000
	maxQueuedPublishBytes  = 64 << 20
	maxPublishesInPipeline = 512
)

// ErrPublishQueueFull is returned by a broadcast when the messages waiting
// to be published to Redis are beyond the adapter's bounds: Redis is
// slower than the broadcasts, or unreachable.
var ErrPublishQueueFull = errors.New("redisadapter: too many broadcasts waiting to be published")

// publisher publishes a namespace's messages in the order they were
// queued, each batch as one pipeline: a burst of broadcasts costs one round
// trip to Redis, not one each, and reaches the other servers together, so
// that they too write it to their clients in one go. Node's Redis clients
// pipeline their commands the same way.
type publisher struct {
	client  redis.UniversalClient
	local   *rally.LocalAdapter
	timeout time.Duration
	start   func(drain func()) bool // runs drain on a goroutine Close waits for; false once closed
	warn    func(msg string, args ...any)

	mu      sync.Mutex
	queue   []*outgoing
	bytes   int
	running bool
}

// outgoing is one message to publish. done, when set, gets the result.
type outgoing struct {
	channel string
	payload []byte
	done    chan error
}

// send queues a message whose result nobody waits for: publishing errors
// are reported to the hub's observers and logged.
func (p *publisher) send(channel string, payload []byte) error {
	return p.push(&outgoing{channel: channel, payload: payload})
}

// publish queues a message behind those already queued and waits until it
// is published, or for ctx.
func (p *publisher) publish(ctx context.Context, channel string, payload []byte) error {
	o := &outgoing{channel: channel, payload: payload, done: make(chan error, 1)}
	if err := p.push(o); err != nil {
		return err
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *publisher) push(o *outgoing) error {
	p.mu.Lock()
	if len(p.queue) >= maxQueuedPublishes || p.bytes+len(o.payload) > maxQueuedPublishBytes {
		p.mu.Unlock()
		wire.ReportPublish(p.local, ErrPublishQueueFull)
		return ErrPublishQueueFull
	}
	p.queue = append(p.queue, o)
	p.bytes += len(o.payload)
	if p.running {
		p.mu.Unlock()
		return nil
	}
	p.running = true
	p.mu.Unlock()
	if !p.start(p.drain) {
		p.fail(ErrClosed)
		return ErrClosed
	}
	return nil
}

// drain publishes batches until the queue is empty.
func (p *publisher) drain() {
	for {
		p.mu.Lock()
		n := min(len(p.queue), maxPublishesInPipeline)
		if n == 0 {
			p.running = false
			p.queue = nil
			p.mu.Unlock()
			return
		}
		batch := p.queue[:n:n]
		p.queue = p.queue[n:]
		for _, o := range batch {
			p.bytes -= len(o.payload)
		}
		p.mu.Unlock()
		p.exec(batch)
	}
}

// exec publishes one batch in one pipeline and hands out the results.
func (p *publisher) exec(batch []*outgoing) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	var cmds []*redis.IntCmd
	var err error
	if len(batch) == 1 {
		cmds = []*redis.IntCmd{p.client.Publish(ctx, batch[0].channel, batch[0].payload)}
	} else {
		_, err = p.client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, o := range batch {
				cmds = append(cmds, pipe.Publish(ctx, o.channel, o.payload))
			}
			return nil
		})
	}
	for i, o := range batch {
		e := err
		if i < len(cmds) && cmds[i].Err() != nil {
			e = cmds[i].Err()
		}
		wire.ReportPublish(p.local, e)
		if o.done != nil {
			o.done <- e
		} else if e != nil {
			p.warn("redisadapter: publishing a broadcast", "channel", o.channel, "error", e)
		}
	}
}

// fail ends every queued message with err; the queue is then idle.
func (p *publisher) fail(err error) {
	p.mu.Lock()
	queue := p.queue
	p.queue, p.bytes, p.running = nil, 0, false
	p.mu.Unlock()
	for _, o := range queue {
		if o.done != nil {
			o.done <- err
		}
	}
	if len(queue) > 0 {
		p.warn("redisadapter: dropping broadcasts queued for Redis", "count", len(queue), "error", fmt.Sprint(err))
	}
}

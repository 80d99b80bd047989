package wire

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rallyhq/rally"
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

// Publisher publishes a namespace's messages in the order they were
// queued, each batch as one pipeline: a burst of broadcasts costs one round
// trip to Redis, not one each, and reaches the other servers together, so
// that they too write it to their clients in one go. Node's Redis clients
// pipeline their commands the same way.
type Publisher struct {
	Client  redis.UniversalClient
	Local   *rally.LocalAdapter // its observers hear of every message sent with Send
	Timeout time.Duration       // of one pipeline
	Sharded bool                // SPUBLISH rather than PUBLISH
	// Start runs drain on a goroutine the adapter's Close waits for, and
	// reports false once the adapter is closed.
	Start func(drain func()) bool
	// Warn logs what failed with nobody waiting for it.
	Warn func(msg string, args ...any)
	// Failed, when set, is called after a pipeline that failed.
	Failed func(error)
	// Closed is what messages get once Start refuses to run.
	Closed error

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
	report  bool // to the observers, once published or failed
}

// Send queues a message whose result nobody waits for: it is reported to
// the hub's observers once published, and logged if it fails.
func (p *Publisher) Send(channel string, payload []byte) error {
	return p.push(&outgoing{channel: channel, payload: payload, report: true})
}

// Publish queues a message behind those already queued and waits until it
// is published, or for ctx. report says whether the observers are to hear
// of it here (the caller may report it itself).
func (p *Publisher) Publish(ctx context.Context, channel string, payload []byte, report bool) error {
	o := &outgoing{channel: channel, payload: payload, done: make(chan error, 1), report: report}
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

func (p *Publisher) push(o *outgoing) error {
	p.mu.Lock()
	if len(p.queue) >= maxQueuedPublishes || p.bytes+len(o.payload) > maxQueuedPublishBytes {
		p.mu.Unlock()
		if o.report {
			ReportPublish(p.Local, ErrPublishQueueFull)
		}
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
	if !p.Start(p.drain) {
		p.fail(p.Closed)
		return p.Closed
	}
	return nil
}

// drain publishes batches until the queue is empty.
func (p *Publisher) drain() {
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
func (p *Publisher) exec(batch []*outgoing) {
	ctx, cancel := context.WithTimeout(context.Background(), p.Timeout)
	defer cancel()
	publish := func(c redis.Cmdable, o *outgoing) *redis.IntCmd {
		if p.Sharded {
			return c.SPublish(ctx, o.channel, o.payload)
		}
		return c.Publish(ctx, o.channel, o.payload)
	}
	var cmds []*redis.IntCmd
	var err error
	if len(batch) == 1 {
		cmds = []*redis.IntCmd{publish(p.Client, batch[0])}
	} else {
		_, err = p.Client.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for _, o := range batch {
				cmds = append(cmds, publish(pipe, o))
			}
			return nil
		})
	}
	failed := err
	for i, o := range batch {
		e := err
		if i < len(cmds) && cmds[i].Err() != nil {
			e = cmds[i].Err()
		}
		if e != nil {
			failed = e
		}
		if o.report {
			ReportPublish(p.Local, e)
		}
		if o.done != nil {
			o.done <- e
		} else if e != nil {
			p.Warn("redisadapter: publishing a broadcast", "channel", o.channel, "error", e)
		}
	}
	if failed != nil && p.Failed != nil {
		p.Failed(failed)
	}
}

// fail ends every queued message with err; the queue is then idle.
func (p *Publisher) fail(err error) {
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
		p.Warn("redisadapter: dropping broadcasts queued for Redis", "count", len(queue), "error", fmt.Sprint(err))
	}
}

package chattest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// Timeout bounds each wait of the helpers.
const Timeout = 10 * time.Second

// Event is an event a client received.
type Event struct {
	Name string
	Args rally.Reply
}

// Client is a Go Socket.IO client connected to an app, recording the
// events it receives.
type Client struct {
	*client.Socket
	t testing.TB

	mu     sync.Mutex
	events []Event
	added  chan struct{} // closed and replaced when an event arrives
}

// Connect connects a client to the app at url; it is closed when t ends.
// It fails t if the server refuses; use Refused to test refusals.
func Connect(t testing.TB, url string, opts *client.Options) *Client {
	t.Helper()
	c, err := dial(t, url, opts)
	if err != nil {
		t.Fatalf("connecting to %s: %v", url, err)
	}
	return c
}

// Refused connects a client that the server must refuse, and returns the
// error.
func Refused(t testing.TB, url string, opts *client.Options) error {
	t.Helper()
	c, err := dial(t, url, opts)
	if err == nil {
		t.Fatalf("the server let the client in as %s, want a refusal", c.ID())
	}
	return err
}

func dial(t testing.TB, url string, opts *client.Options) (*Client, error) {
	c := &Client{Socket: client.New(url, opts), t: t, added: make(chan struct{})}
	c.OnAny(c.record)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	return c, c.Socket.Connect(ctx)
}

func (c *Client) record(name string, args rally.Reply) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, Event{Name: name, Args: args})
	close(c.added)
	c.added = make(chan struct{})
}

// Events returns the events received so far named name, or all when name
// is "".
func (c *Client) Events(name string) []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Event
	for _, e := range c.events {
		if name == "" || e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// Wait waits for an event named name for which match (if not nil)
// reports true, and returns its arguments.
func (c *Client) Wait(name string, match func(rally.Reply) bool) rally.Reply {
	c.t.Helper()
	deadline := time.After(Timeout)
	seen := 0
	for {
		c.mu.Lock()
		events, added := c.events, c.added
		c.mu.Unlock()
		for _, e := range events[seen:] {
			if e.Name == name && (match == nil || match(e.Args)) {
				return e.Args
			}
		}
		seen = len(events)
		select {
		case <-added:
		case <-deadline:
			c.t.Fatalf("client %s: no matching %q event in %v; got %s", c.ID(), name, Timeout, describe(events))
			return rally.Reply{}
		}
	}
}

func describe(events []Event) string {
	s := ""
	for _, e := range events {
		s += fmt.Sprintf("\n\t%s %v", e.Name, e.Args.Values())
	}
	if s == "" {
		return "none"
	}
	return s
}

// Ack emits an event, waits for its ack and decodes the first argument
// into dst (when not nil). It returns the ack's error ({"error": ...}).
func (c *Client) Ack(dst any, event string, args ...any) error {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	r, err := c.EmitWithAck(ctx, event, args...)
	if ackErr := (*rally.AckError)(nil); errors.As(err, &ackErr) {
		return ackErr
	}
	if err != nil {
		c.t.Fatalf("client %s: waiting for the ack of %q: %v", c.ID(), event, err)
	}
	if dst != nil {
		if err := r.Decode(dst); err != nil {
			c.t.Fatalf("decoding the ack of %q: %v", event, err)
		}
	}
	return nil
}

// MustAck is Ack that fails the test on an error ack.
func (c *Client) MustAck(dst any, event string, args ...any) {
	c.t.Helper()
	if err := c.Ack(dst, event, args...); err != nil {
		c.t.Fatalf("client %s: %s %v: %v", c.ID(), event, args, err)
	}
}

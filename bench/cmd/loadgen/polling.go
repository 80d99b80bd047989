package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/pollclient"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// pollWire is how the long-polling clients make their requests.
var pollWire = flag.String("http", "raw",
	`poll-*: the clients' HTTP: "raw" (HTTP/1.1 written on the connections, the least CPU) or "net/http" (net/http's client)`)

// PollFigures are what the long-polling scenarios add to Result.
type PollFigures struct {
	// HTTPClient is the -http the clients used.
	HTTPClient string `json:"http_client"`
}

// pollSetup returns the wire the clients use, after recording it in r.
func pollSetup(r *Result) (pollclient.Wire, error) {
	r.PollFigures = &PollFigures{HTTPClient: *pollWire}
	return pollclient.ParseWire(*pollWire)
}

// firstError keeps the first of the errors many goroutines report, and
// counts them all.
type firstError struct {
	mu    sync.Mutex
	err   error
	count atomic.Uint64
}

func (f *firstError) set(err error) {
	f.count.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
		logf("%v", err)
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// runPollHandshake runs c.concurrency loops of Engine.IO sessions over
// HTTP long-polling: GET the open packet, POST the CONNECT "40", GET its
// reply, then POST the close packet "1". Each loop keeps its two
// keep-alive connections (GET and POST) from one session to the next, as
// a browser reconnecting would; the time of a handshake runs from the
// first GET sent to the CONNECT reply read, the close not included.
func runPollHandshake(c config) (*Result, error) {
	r := &Result{Scenario: "poll-handshake", Clients: c.concurrency}
	how, err := pollSetup(r)
	if err != nil {
		return r, err
	}
	var h hist.Histogram
	var count atomic.Uint64
	var measuring, stop atomic.Bool
	var fails firstError
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := pollclient.NewClient(c.addr, how, 0)
			defer cl.Close()
			for !stop.Load() {
				start := time.Now()
				s, err := cl.Open()
				if err == nil {
					if _, err = s.Join(); err != nil {
						s.Abort()
					}
				}
				if err != nil {
					fails.set(fmt.Errorf("poll-handshake: %w", err))
					time.Sleep(10 * time.Millisecond)
					continue
				}
				el := time.Since(start)
				if err := s.Close(); err != nil {
					fails.set(fmt.Errorf("poll-handshake: closing: %w", err))
				}
				if measuring.Load() {
					h.Record(el)
					count.Add(1)
				}
			}
		}()
	}
	measureWindow(c, r, &measuring, &stop)
	wg.Wait()
	r.Ops = count.Load()
	r.Rate = float64(r.Ops) / r.Seconds
	setLatency(r, &h)
	r.Errors = fails.count.Load()
	if err := fails.get(); err != nil {
		r.ErrorMsg = "first error: " + err.Error()
	}
	if r.Ops == 0 {
		return r, fmt.Errorf("poll-handshake: none completed: %v", fails.get())
	}
	return r, nil
}

// pollEchoer is one client of the poll-echo scenario: its session, and
// the ack ids its poller passes to its emitter.
type pollEchoer struct {
	s    *pollclient.Session
	cl   *pollclient.Client
	acks chan int64
}

// runPollEcho runs c.clients polling sessions, each a closed loop of
// emit("echo", {…}, ack): the emit goes in a POST, and the ack comes back
// in the answer to the GET that the client keeps pending, as the official
// client does. The round trip runs from the POST sent to the ack read.
func runPollEcho(c config) (*Result, error) {
	n := c.clients
	r := &Result{Scenario: "poll-echo", Clients: n}
	how, err := pollSetup(r)
	if err != nil {
		return r, err
	}
	clients := make([]*pollEchoer, n)
	var fails firstError
	closeAllPolls := func() {
		var wg sync.WaitGroup
		for _, e := range clients {
			if e == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.s.Close() // the close packet ends the pending poll too
				e.cl.Close()
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	for i := range clients {
		cl := pollclient.NewClient(c.addr, how, 0)
		s, err := cl.Open()
		if err == nil {
			if _, err = s.Join(); err != nil {
				s.Abort()
			}
		}
		if err != nil {
			cl.Close()
			closeAllPolls()
			return r, fmt.Errorf("poll-echo: client %d: %w", i, err)
		}
		clients[i] = &pollEchoer{s: s, cl: cl, acks: make(chan int64, 16)}
	}
	r.ConnRate = float64(n) / time.Since(start).Seconds()
	logf("poll-echo: %d connected (%.0f/s)", n, r.ConnRate)

	var h hist.Histogram
	var acks atomic.Uint64
	var measuring, stop atomic.Bool
	pad := strings.Repeat("x", c.pad)
	var pollers, emitters sync.WaitGroup
	for ci, e := range clients {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			defer close(e.acks)
			for {
				payload, err := e.s.Poll()
				if err != nil {
					if !stop.Load() {
						fails.set(fmt.Errorf("poll-echo: client %d polling: %w", ci, err))
					}
					return
				}
				pollclient.Packets(payload, func(p []byte) bool {
					if id, ok := wsclient.AckID(p); ok {
						e.acks <- id
						return true
					}
					if len(p) > 0 && p[0] != '4' {
						err = e.s.HandleEngine(p)
					}
					return err == nil
				})
				if err != nil {
					if !stop.Load() && !errors.Is(err, pollclient.ErrClosed) {
						fails.set(fmt.Errorf("poll-echo: client %d: %w", ci, err))
					}
					return
				}
			}
		}()
		emitters.Add(1)
		go func() {
			defer emitters.Done()
			var buf, payload []byte
			timer := time.NewTimer(time.Hour)
			defer timer.Stop()
			for id := int64(0); !stop.Load(); id++ {
				sent := time.Now()
				payload = fmt.Appendf(payload[:0], `{"t":%d,"i":%d,"p":"%s"}`, sent.UnixMicro(), ci, pad)
				buf = wsclient.AppendEvent(buf[:0], id, "echo", payload)
				if err := e.s.Post(buf); err != nil {
					fails.set(fmt.Errorf("poll-echo: client %d emitting %d: %w", ci, id, err))
					return
				}
				timer.Reset(10 * time.Second)
			wait:
				for {
					select {
					case got, ok := <-e.acks:
						if !ok {
							return // the poller ended, and said why
						}
						if got == id {
							break wait
						}
					case <-timer.C:
						fails.set(fmt.Errorf("poll-echo: client %d: no ack %d within 10s", ci, id))
						return
					}
				}
				if measuring.Load() {
					h.Record(time.Since(sent))
					acks.Add(1)
				}
			}
		}()
	}
	measureWindow(c, r, &measuring, &stop)
	emitters.Wait()
	closeAllPolls()
	pollers.Wait()
	r.Ops = acks.Load()
	r.Rate = float64(r.Ops) / r.Seconds
	setLatency(r, &h)
	r.Errors = fails.count.Load()
	if r.Ops == 0 {
		return r, fmt.Errorf("poll-echo: no ack in the window: %v", fails.get())
	}
	return r, fails.get()
}

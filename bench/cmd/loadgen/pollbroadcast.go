package main

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/pollclient"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// runPollBroadcast is runBroadcast over long-polling: c.clients polling
// sessions, each keeping a GET pending; the first also POSTs the
// triggers. A trigger asks for a batch of ticks, the next goes once every
// session got every tick (a closed loop); the ticks a server buffers
// while a session has no GET pending come together in the next answer.
// Latency (arrival minus the tick's timestamp) is from a second phase of
// one tick per trigger, as in runBroadcast.
func runPollBroadcast(c config) (*Result, error) {
	n := c.clients
	batch := c.batch
	if batch <= 0 {
		batch = max(1, 10000/n)
	}
	r := &Result{Scenario: "poll-broadcast", Clients: n, Batch: batch}
	how, err := pollSetup(r)
	if err != nil {
		return r, err
	}
	clients := make([]*pollclient.Client, n)
	sessions := make([]*pollclient.Session, n)
	closeAllPolls := func() {
		var wg sync.WaitGroup
		for i, s := range sessions {
			if s == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.Close()
				clients[i].Close()
			}()
		}
		wg.Wait()
	}
	start := time.Now()
	err = parallel(n, min(c.concurrency, n), func(i int) error {
		cl := pollclient.NewClient(c.addr, how, 0)
		s, err := cl.Open()
		if err == nil {
			if _, err = s.Join(); err != nil {
				s.Abort()
			}
		}
		if err != nil {
			cl.Close()
			return err
		}
		clients[i], sessions[i] = cl, s
		return nil
	})
	if err != nil {
		closeAllPolls()
		return r, fmt.Errorf("poll-broadcast: %w", err)
	}
	r.ConnRate = float64(n) / time.Since(start).Seconds()
	logf("poll-broadcast: %d connected (%.0f/s)", n, r.ConnRate)

	var h hist.Histogram
	var delivered, target atomic.Uint64
	var measuring, stop atomic.Bool
	var fails firstError
	done := make(chan struct{}, 1)
	tick := []byte(`42["tick",`)
	var pollers sync.WaitGroup
	for i, s := range sessions {
		pollers.Add(1)
		go func() {
			defer pollers.Done()
			for !stop.Load() {
				payload, err := s.Poll()
				if err != nil {
					if !stop.Load() {
						fails.set(fmt.Errorf("poll-broadcast: client %d polling: %w", i, err))
					}
					return
				}
				pollclient.Packets(payload, func(p []byte) bool {
					if !bytes.HasPrefix(p, tick) {
						if len(p) > 0 && p[0] != '4' {
							err = s.HandleEngine(p)
						}
						return err == nil
					}
					if t, ok := wsclient.IntField(p, "t"); !ok {
						fails.count.Add(1)
					} else if measuring.Load() {
						h.Record(time.Duration(time.Now().UnixMicro()-t) * time.Microsecond)
					}
					if delivered.Add(1) == target.Load() {
						select {
						case done <- struct{}{}:
						default:
						}
					}
					return true
				})
				if err != nil {
					if !stop.Load() && !errors.Is(err, pollclient.ErrClosed) {
						fails.set(fmt.Errorf("poll-broadcast: client %d: %w", i, err))
					}
					return
				}
			}
		}()
	}
	finish := func() {
		stop.Store(true)
		closeAllPolls()
		pollers.Wait()
	}

	trigger := blast(c, batch)
	per := uint64(batch * n)
	// round POSTs one trigger and waits for all its deliveries.
	round := func() bool {
		target.Store(target.Load() + per)
		if err := sessions[0].Post(trigger); err != nil {
			fails.set(fmt.Errorf("poll-broadcast: triggering: %w", err))
			return false
		}
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		for delivered.Load() < target.Load() {
			select {
			case <-done:
			case <-t.C:
				return false
			}
		}
		return true
	}
	warmEnd := time.Now().Add(c.warmup)
	for time.Now().Before(warmEnd) {
		if !round() {
			finish()
			return r, fmt.Errorf("poll-broadcast: warm-up batch not fully delivered within 10s (%d of %d): %v",
				delivered.Load(), target.Load(), fails.get())
		}
	}

	base := delivered.Load()
	measuring.Store(true)
	cpuProf := startCPUProfile(c)
	w := startWindow(c.pid)
	for time.Since(w.start) < c.duration {
		r.Batches++
		if !round() {
			r.Timeouts++
			break
		}
	}
	w.end(r)
	measuring.Store(false)
	cpuProf()
	r.Ops = delivered.Load() - base
	r.Expected = uint64(r.Batches) * per
	if r.Expected > r.Ops {
		r.Lost = r.Expected - r.Ops
	}
	r.Rate = float64(r.Ops) / r.Seconds
	r.BurstP50 = float64(h.Quantile(0.50)) / 1e3
	r.BurstP99 = float64(h.Quantile(0.99)) / 1e3
	if r.Timeouts > 0 {
		finish()
		return r, fmt.Errorf("poll-broadcast: a batch was not fully delivered within 10s (%d lost): %v", r.Lost, fails.get())
	}

	if c.latDuration > 0 {
		trigger = blast(c, 1)
		per = uint64(n)
		h.Reset()
		measuring.Store(true)
		start := time.Now()
		for time.Since(start) < c.latDuration {
			r.LatencyRounds++
			if !round() {
				r.Timeouts++
				break
			}
		}
		measuring.Store(false)
		r.LatencyRate = float64(uint64(r.LatencyRounds)*per) / time.Since(start).Seconds()
		setLatency(r, &h)
	}
	finish()
	r.Errors = fails.count.Load()
	if r.Timeouts > 0 {
		return r, fmt.Errorf("poll-broadcast: a single tick was not fully delivered within 10s: %v", fails.get())
	}
	return r, nil
}

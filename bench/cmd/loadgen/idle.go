package main

import (
	"flag"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/park"
	"github.com/rallyhq/rally/bench/internal/proc"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// The idle scenario's options for many connections.
var (
	idlePark = flag.Bool("park", false,
		"idle: once joined, hand each connection to one epoll loop that answers pings (internal/park), instead of a goroutine and read buffer each")
	idleSources = flag.Int("sources", 0,
		"idle: connect from this many loopback source addresses, 127.0.0.2 onwards, each with its own ephemeral ports (0: the default source)")
	idleHold = flag.Duration("hold", 0,
		"idle with -park: keep every connection this long after measuring (longer than the server's ping interval, so that every one answers pings), then check that none was lost")
)

// IdleFigures are the idle scenario's figures besides the RSS ones of
// Result. Durations are in microseconds.
type IdleFigures struct {
	// Parked: the connections were parked on one epoll loop; Sources:
	// loopback source addresses they came from (0: the default one).
	Parked  bool `json:"parked"`
	Sources int  `json:"sources"`
	// ConnectSeconds: time to connect them all (Result.ConnRate is
	// clients over it); ConnectP50/P99: one connection's websocket and
	// Engine.IO handshake plus CONNECT, under that load.
	ConnectSeconds float64 `json:"connect_seconds"`
	ConnectP50     float64 `json:"connect_p50_us,omitempty"`
	ConnectP99     float64 `json:"connect_p99_us,omitempty"`
	// LoadgenRSS: the load generator's own VmRSS with everyone connected
	// (after a GC); LoadgenPerConn: its growth from before connecting,
	// per connection.
	LoadgenRSS     int64   `json:"loadgen_rss_bytes,omitempty"`
	LoadgenPerConn float64 `json:"loadgen_per_conn_bytes,omitempty"`
	// After -hold: how long, the Engine.IO pings answered meanwhile (since
	// connecting), connections dropped, and the server's count of clients.
	HeldSeconds      float64 `json:"held_seconds,omitempty"`
	Pings            uint64  `json:"pings_answered,omitempty"`
	Dropped          uint64  `json:"dropped_conns"`
	ClientsAfterHold int64   `json:"server_clients_after_hold,omitempty"`
	// Limits: the kernel's connection limits and the open-file limit.
	Limits map[string]string `json:"limits,omitempty"`
}

// idleSet is the connections of an idle run: Conns with a reader each, or
// a Park.
type idleSet struct {
	conns []*wsclient.Conn
	park  *park.Park
}

func (s *idleSet) close() {
	if s.park != nil {
		s.park.Close()
	}
	closeAll(s.conns)
}

// connectIdle opens c.clients connections for runIdle, each with a
// reader that answers pings or, with -park, parked, and records how long
// it took in r.
func connectIdle(c config, r *Result, reader func(*wsclient.Conn)) (*idleSet, error) {
	n := c.clients
	f := &IdleFigures{Parked: *idlePark, Sources: *idleSources}
	r.IdleFigures = f
	if f.Sources < 0 || f.Sources > 250 {
		return nil, fmt.Errorf("idle: -sources %d: between 0 and 250", f.Sources)
	}
	start := time.Now()
	if !f.Parked {
		conns, rate, err := connectAll(c, n, reader)
		if err != nil {
			return nil, err
		}
		r.ConnRate = rate
		f.ConnectSeconds = time.Since(start).Seconds()
		return &idleSet{conns: conns}, nil
	}

	f.Limits = proc.KernelLimits()
	rssBefore, _ := proc.RSS(0)
	p, err := park.New()
	if err != nil {
		return nil, err
	}
	var h hist.Histogram
	var connected atomic.Int64
	dial := func(i int) error {
		opts := wsclient.Options{ReadBuffer: 512}
		if f.Sources > 0 {
			opts.LocalAddr = net.IPv4(127, 0, 0, byte(2+i%f.Sources))
		}
		t0 := time.Now()
		conn, err := wsclient.ConnectSocketIO(c.addr, opts)
		if err != nil {
			return err
		}
		h.Record(time.Since(t0))
		fd, err := conn.Detach()
		if err != nil {
			return err
		}
		if err := p.Add(fd); err != nil {
			return err
		}
		if k := connected.Add(1); k%10000 == 0 {
			logf("idle: %d connected (%.0f/s), %d dropped so far", k,
				float64(k)/time.Since(start).Seconds(), p.Stats().Dropped)
		}
		return nil
	}
	if err := parallel(n, min(c.concurrency, n), dial); err != nil {
		p.Close()
		return nil, err
	}
	el := time.Since(start)
	f.ConnectSeconds = el.Seconds()
	r.ConnRate = float64(n) / el.Seconds()
	f.ConnectP50 = float64(h.Quantile(0.50)) / 1e3
	f.ConnectP99 = float64(h.Quantile(0.99)) / 1e3
	debug.FreeOSMemory()
	if rss, err := proc.RSS(0); err == nil {
		f.LoadgenRSS = rss
		f.LoadgenPerConn = float64(rss-rssBefore) / float64(n)
	}
	return &idleSet{park: p}, nil
}

// hold keeps parked connections for -hold, then checks that the server
// still counts every client and that none was dropped.
func (s *idleSet) hold(c config, r *Result) error {
	f := r.IdleFigures
	if s.park == nil || *idleHold <= 0 {
		return nil
	}
	logf("idle: holding %d connections for %s", c.clients, *idleHold)
	time.Sleep(*idleHold)
	st := s.park.Stats()
	f.HeldSeconds = idleHold.Seconds()
	f.Pings = st.Pings
	f.Dropped = st.Dropped
	f.ClientsAfterHold = serverClients(c.addr)
	r.Errors += st.PongErrors
	if st.Dropped > 0 || f.ClientsAfterHold != int64(c.clients) {
		return fmt.Errorf("idle: after holding %s: %d connections dropped, the server counts %d clients of %d",
			*idleHold, st.Dropped, f.ClientsAfterHold, c.clients)
	}
	return nil
}

// parallel calls fn(0) … fn(n-1) from workers goroutines and returns the
// first error, after which no new call starts.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

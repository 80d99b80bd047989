// Command loadgen runs one benchmark scenario against one server that
// implements the contract of bench/README.md, and prints the result as one
// line of JSON on stdout (progress goes to stderr). The harness starts it
// pinned to its own core; it can also be run by hand:
//
//	loadgen -scenario broadcast -addr 127.0.0.1:3000 -pid 1234 -clients 1000
//
// Scenarios: broadcast (fan-out deliveries/s and delivery latency), echo
// (emit-with-ack round trips), idle (server RSS growth per idle
// connection), handshake (websocket-only connections/s) and jitter
// (broadcasts delivered to clients whose connections keep being cut, with
// or without connection state recovery). With -parser msgpack the clients
// speak socket.io-msgpack-parser's format (all but jitter). Broadcast with
// -addr2 splits its clients between two servers that share broadcasts
// through Redis (see crossserver.go).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/proc"
	"github.com/rallyhq/rally/bench/internal/wsclient"
	"github.com/tinylib/msgp/msgp"
)

// Result is what one run reports. Durations are in microseconds.
type Result struct {
	Scenario string  `json:"scenario"`
	Parser   string  `json:"parser"`
	Clients  int     `json:"clients"`
	Seconds  float64 `json:"seconds"` // measured window
	Ops      uint64  `json:"ops"`     // deliveries, acks or handshakes in the window
	Rate     float64 `json:"rate"`    // ops per second
	P50      float64 `json:"p50_us,omitempty"`
	P99      float64 `json:"p99_us,omitempty"`
	Max      float64 `json:"max_us,omitempty"`
	// Server and load generator CPU use during the window, in percent of
	// one core.
	ServerCPU  float64 `json:"server_cpu_pct"`
	LoadgenCPU float64 `json:"loadgen_cpu_pct"`
	// CPU the rest of the machine used meanwhile: other processes
	// competing for the two cores make the figures noisy.
	OthersCPU float64 `json:"others_cpu_pct"`

	// broadcast
	Batch    int     `json:"batch,omitempty"`
	Batches  int     `json:"batches,omitempty"`
	Expected uint64  `json:"expected,omitempty"`
	Lost     uint64  `json:"lost,omitempty"`
	Timeouts int     `json:"timeouts,omitempty"`
	ConnRate float64 `json:"connect_rate,omitempty"` // connections/s while setting up
	// Delivery latency under the batches of the throughput window; not
	// comparable across servers (see runBroadcast).
	BurstP50 float64 `json:"burst_p50_us,omitempty"`
	BurstP99 float64 `json:"burst_p99_us,omitempty"`
	// The latency phase: rounds of one tick, and the deliveries/s they made.
	LatencyRounds int     `json:"latency_rounds,omitempty"`
	LatencyRate   float64 `json:"latency_rate,omitempty"`

	// idle
	RSSBefore     int64   `json:"rss_before,omitempty"`
	RSSAfterRaw   int64   `json:"rss_after_raw,omitempty"` // before the server's GC
	RSSAfter      int64   `json:"rss_after,omitempty"`     // after the server's GC
	PerConn       float64 `json:"per_conn_bytes,omitempty"`
	PerConnRaw    float64 `json:"per_conn_raw_bytes,omitempty"`
	ServerClients int64   `json:"server_clients,omitempty"`

	// jitter (absent from the other scenarios' results)
	*JitterFigures
	// broadcast across two servers (-addr2)
	*CrossFigures
	// idle: connect time, the load generator's memory, pings (idle.go)
	*IdleFigures
	// poll-handshake, poll-echo: the HTTP client (polling.go)
	*PollFigures

	Errors   uint64 `json:"errors"`
	ErrorMsg string `json:"error,omitempty"`
	Stats    any    `json:"server_stats,omitempty"`
}

type config struct {
	scenario    string
	addr        string
	pid         int
	clients     int
	duration    time.Duration
	latDuration time.Duration
	warmup      time.Duration
	batch       int
	pad         int
	concurrency int
	readBuf     int
	timeout     time.Duration
	cpuProfile  string
	heapProfile string
	// msgpack: socket.io-msgpack-parser's format instead of the default.
	msgpack bool
	// jitter
	rate     float64
	cutEvery time.Duration
	downMin  time.Duration
	downMax  time.Duration
	recovery bool
	seed     uint64
	// broadcast across two servers
	cross crossConfig
}

func main() {
	var c config
	flag.StringVar(&c.scenario, "scenario", "broadcast", "broadcast, echo, idle, handshake, jitter, poll-handshake, poll-echo or poll-broadcast")
	flag.StringVar(&c.addr, "addr", "127.0.0.1:3000", "server address (loopback)")
	flag.IntVar(&c.pid, "pid", 0, "server process id, for its RSS and CPU time")
	flag.IntVar(&c.clients, "clients", 1000, "connections (broadcast, echo, idle)")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "measured window")
	flag.DurationVar(&c.latDuration, "latency-duration", 3*time.Second, "broadcast: length of the one-tick-at-a-time latency phase (0 skips it)")
	flag.DurationVar(&c.warmup, "warmup", time.Second, "unmeasured warm-up before the window; jitter: broadcasts before the first cut")
	flag.IntVar(&c.batch, "batch", 0, "broadcast: ticks per trigger (0: about 20,000 deliveries per trigger)")
	flag.IntVar(&c.pad, "pad", 32, "payload padding in bytes")
	flag.IntVar(&c.concurrency, "concurrency", 50, "parallel dialers; handshake: parallel handshake loops")
	flag.IntVar(&c.readBuf, "readbuf", 8192, "read buffer per connection")
	flag.DurationVar(&c.timeout, "timeout", 120*time.Second, "give up after this long")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write the server's CPU profile over the window here (needs -pprof on the server)")
	flag.StringVar(&c.heapProfile, "heapprofile", "", "idle: write the server's heap and goroutine profiles here (needs -pprof)")
	flag.Float64Var(&c.rate, "rate", 50, "jitter: broadcasts per second")
	flag.DurationVar(&c.cutEvery, "cut-every", 2*time.Second, "jitter: mean time a connection lives before the client cuts it (exponential)")
	flag.DurationVar(&c.downMin, "down-min", 100*time.Millisecond, "jitter: least time a client stays disconnected")
	flag.DurationVar(&c.downMax, "down-max", time.Second, "jitter: most time a client stays disconnected (uniform from -down-min)")
	flag.BoolVar(&c.recovery, "recovery", false, "jitter: the server has connection state recovery on (its CONNECT replies must carry a pid)")
	flag.Uint64Var(&c.seed, "seed", 1, "jitter: seed of the clients' cut and down times")
	c.cross.register()
	parserName := flag.String("parser", "default", `Socket.IO parser the server uses: "default" or "msgpack" (socket.io-msgpack-parser; not jitter)`)
	flag.Parse()
	switch *parserName {
	case "default":
	case "msgpack":
		if c.scenario == "jitter" {
			fatal(errors.New("-parser msgpack: not for the jitter scenario"))
		}
		c.msgpack = true
	default:
		fatal(fmt.Errorf("unknown -parser %q", *parserName))
	}

	if !checkLoopback(c.addr) {
		fatal(fmt.Errorf("-addr must be a loopback address, got %q", c.addr))
	}
	if c.cross.addr2 != "" && (c.scenario != "broadcast" || !checkLoopback(c.cross.addr2)) {
		fatal(fmt.Errorf("-addr2 %q: only for the broadcast scenario, and a loopback address", c.cross.addr2))
	}
	if _, err := proc.RaiseFileLimit(); err != nil {
		fatal(err)
	}
	// A stuck server must not hang the harness.
	time.AfterFunc(c.timeout, func() {
		fmt.Fprintf(os.Stderr, "loadgen: timed out after %s\n", c.timeout)
		os.Exit(3)
	})

	var res *Result
	var err error
	switch c.scenario {
	case "broadcast":
		res, err = runBroadcast(c)
	case "echo":
		res, err = runEcho(c)
	case "idle":
		res, err = runIdle(c)
	case "handshake":
		res, err = runHandshake(c)
	case "jitter":
		res, err = runJitter(c)
	case "poll-handshake":
		res, err = runPollHandshake(c)
	case "poll-echo":
		res, err = runPollEcho(c)
	case "poll-broadcast":
		res, err = runPollBroadcast(c)
	default:
		err = fmt.Errorf("unknown scenario %q", c.scenario)
	}
	if res == nil {
		res = &Result{Scenario: c.scenario}
	}
	if err != nil {
		res.ErrorMsg = err.Error()
	}
	if res.Stats == nil {
		res.Stats = serverStats(c.addr)
	}
	res.Parser = *parserName
	json.NewEncoder(os.Stdout).Encode(res)
	if err != nil {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(2)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
}

// window measures the CPU both processes use over the measured window.
type window struct {
	pid       int
	start     time.Time
	serverCPU time.Duration
	selfCPU   time.Duration
	busy      time.Duration
}

func startWindow(pid int) *window {
	w := &window{pid: pid, start: time.Now(), selfCPU: proc.SelfCPUTime()}
	w.busy, _ = proc.BusyTime()
	if pid > 0 {
		w.serverCPU, _ = proc.CPUTime(pid)
	}
	return w
}

func (w *window) end(r *Result) {
	el := time.Since(w.start)
	r.Seconds = el.Seconds()
	self := proc.SelfCPUTime() - w.selfCPU
	r.LoadgenCPU = 100 * float64(self) / float64(el)
	var server time.Duration
	if w.pid > 0 {
		if cpu, err := proc.CPUTime(w.pid); err == nil {
			server = cpu - w.serverCPU
			r.ServerCPU = 100 * float64(server) / float64(el)
		}
	}
	if busy, err := proc.BusyTime(); err == nil {
		r.OthersCPU = max(0, 100*float64(busy-w.busy-self-server)/float64(el))
	}
}

func setLatency(r *Result, h *hist.Histogram) {
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	r.P50 = us(h.Quantile(0.50))
	r.P99 = us(h.Quantile(0.99))
	r.Max = us(h.Max())
}

// connectAll opens n Socket.IO connections with c.concurrency dialers and
// calls started, if not nil, with each as soon as it is connected (so that
// its reader answers pings while the others connect).
func connectAll(c config, n int, started func(*wsclient.Conn)) ([]*wsclient.Conn, float64, error) {
	dial := func(int) (*wsclient.Conn, error) {
		return wsclient.ConnectSocketIO(c.addr, wsclient.Options{ReadBuffer: c.readBuf, Msgpack: c.msgpack})
	}
	return connectEach(c, n, dial, started)
}

// connectEach is connectAll with dial opening connection i.
func connectEach(c config, n int, dial func(i int) (*wsclient.Conn, error), started func(*wsclient.Conn)) ([]*wsclient.Conn, float64, error) {
	conns := make([]*wsclient.Conn, n)
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	workers := min(c.concurrency, n)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				conn, err := dial(i)
				if err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					errMu.Unlock()
					next.Store(int64(n)) // stop the others
					return
				}
				conns[i] = conn
				if started != nil {
					started(conn)
				}
			}
		}()
	}
	wg.Wait()
	rate := float64(n) / time.Since(start).Seconds()
	if firstErr != nil {
		for _, conn := range conns {
			if conn != nil {
				conn.Close()
			}
		}
		return nil, 0, firstErr
	}
	return conns, rate, nil
}

func closeAll(conns []*wsclient.Conn) {
	for _, conn := range conns {
		conn.Reset()
	}
}

// runBroadcast connects c.clients sockets; the first one also triggers.
// Each trigger asks the server to broadcast a batch of ticks; the next is
// sent when every socket got every tick (a closed loop, so the window
// measures the sustained rate, not a queue filling up). The latency of a
// delivery is its arrival time minus the tick's server timestamp; it is
// measured in a second phase, one tick per trigger: within a batch, a
// server that queues stamps every tick at once and a server that writes
// synchronously stamps each after writing the previous one everywhere, so
// batch latencies do not compare.
func runBroadcast(c config) (*Result, error) {
	n := c.clients
	batch := c.batch
	if batch <= 0 {
		batch = max(1, 20000/n)
	}
	r := &Result{Scenario: "broadcast", Clients: n, Batch: batch}
	cross := newCrossRun(c, r)
	defer cross.finish()
	var h hist.Histogram
	var delivered, target atomic.Uint64
	var measuring atomic.Bool
	var errs atomic.Uint64
	done := make(chan struct{}, 1)
	reader := func(conn *wsclient.Conn, remote bool) {
		go func() {
			for {
				_, m, err := conn.ReadMessage()
				if err != nil {
					return
				}
				if conn.HandleEngine(m) {
					continue
				}
				var t int64
				var ok, event bool
				if c.msgpack {
					t, ok, event = msgpackTick(m)
				} else if event = len(m) >= 3 && m[1] == '2'; event {
					t, ok = wsclient.IntField(m, "t")
				}
				if !event {
					continue
				}
				if ok {
					if measuring.Load() {
						d := time.Duration(time.Now().UnixMicro()-t) * time.Microsecond
						h.Record(d)
						cross.record(remote, d)
					}
				} else {
					errs.Add(1)
				}
				if delivered.Add(1) == target.Load() {
					select {
					case done <- struct{}{}:
					default:
					}
				}
			}
		}()
	}
	conns, rate, err := connectSides(c, cross, n, reader)
	if err != nil {
		return r, err
	}
	defer closeAll(conns)
	r.ConnRate = rate
	logf("broadcast: %d connected (%.0f/s)", n, rate)

	trigger := blast(c, batch)
	per := uint64(batch * n)
	// round sends one trigger and waits for all its deliveries.
	round := func() bool {
		target.Store(target.Load() + per)
		if delivered.Load() >= target.Load() {
			return true
		}
		if err := send(c, conns[0], trigger); err != nil {
			errs.Add(1)
			return false
		}
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				if delivered.Load() >= target.Load() {
					return true
				}
			case <-t.C:
				return false
			}
		}
	}
	warmEnd := time.Now().Add(c.warmup)
	for time.Now().Before(warmEnd) {
		if !round() {
			r.Timeouts++
			return r, fmt.Errorf("broadcast: warm-up batch not fully delivered within 10s (%d of %d)", delivered.Load(), target.Load())
		}
	}

	// Throughput: batches of ticks, the next once all are delivered.
	base := delivered.Load()
	measuring.Store(true)
	cpuProf := startCPUProfiles(c)
	w := startWindow(c.pid)
	cross.startWindow()
	for time.Since(w.start) < c.duration {
		r.Batches++
		if !round() {
			r.Timeouts++
			break
		}
	}
	w.end(r)
	cross.endWindow()
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
	r.Errors = errs.Load()
	if r.Timeouts > 0 {
		return r, fmt.Errorf("broadcast: a batch was not fully delivered within 10s (%d lost)", r.Lost)
	}

	// Latency: one tick at a time, so that every server stamps a tick
	// and then fans it out, whether it queues or writes synchronously.
	if c.latDuration > 0 {
		trigger = blast(c, 1)
		per = uint64(n)
		h.Reset()
		cross.resetLatency()
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
		cross.setLatency()
		if r.Timeouts > 0 {
			return r, errors.New("broadcast: a single tick was not fully delivered within 10s")
		}
	}
	return r, nil
}

// blast returns the trigger message: a "blast" event asking for n ticks
// of c.pad bytes' padding, in the parser's format.
func blast(c config, n int) []byte {
	if !c.msgpack {
		return wsclient.AppendEvent(nil, -1, "blast", fmt.Appendf(nil, `{"n":%d,"pad":%d}`, n, c.pad))
	}
	arg := msgp.AppendMapHeader(nil, 2)
	arg = msgp.AppendString(arg, "n")
	arg = msgp.AppendInt(arg, n)
	arg = msgp.AppendString(arg, "pad")
	arg = msgp.AppendInt(arg, c.pad)
	return wsclient.AppendMsgpackEvent(nil, -1, "blast", arg)
}

// send writes a Socket.IO message: binary with msgpack, text otherwise.
func send(c config, conn *wsclient.Conn, m []byte) error {
	if c.msgpack {
		return conn.WriteBinary(m)
	}
	return conn.WriteText(m)
}

// msgpackTick reports whether m, a msgpack packet, is an EVENT and returns
// its first argument's "t", when it has one.
func msgpackTick(m []byte) (t int64, ok, event bool) {
	p, err := wsclient.DecodePacket(m)
	if err != nil || p.Type != wsclient.PacketEvent {
		return 0, false, false
	}
	_, args, err := wsclient.MsgpackEventName(p.Data)
	if err != nil {
		return 0, false, true
	}
	t, ok = wsclient.MsgpackIntField(args, "t")
	return t, ok, true
}

// runEcho runs c.clients closed loops of emit-with-ack: each sends
// 42<id>["echo",{...}] and waits for 43<id>[...] before the next.
func runEcho(c config) (*Result, error) {
	n := c.clients
	r := &Result{Scenario: "echo", Clients: n}
	conns, rate, err := connectAll(c, n, nil)
	if err != nil {
		return r, err
	}
	defer closeAll(conns)
	r.ConnRate = rate
	logf("echo: %d connected", n)

	var h hist.Histogram
	var acks, errs atomic.Uint64
	var measuring, stop atomic.Bool
	pad := strings.Repeat("x", c.pad)
	var wg sync.WaitGroup
	var firstErr error
	var errMu sync.Mutex
	for ci, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf, payload []byte
			for id := int64(0); !stop.Load(); id++ {
				start := time.Now()
				if c.msgpack {
					payload = msgp.AppendMapHeader(payload[:0], 3)
					payload = msgp.AppendString(payload, "t")
					payload = msgp.AppendInt64(payload, start.UnixMicro())
					payload = msgp.AppendString(payload, "i")
					payload = msgp.AppendInt(payload, ci)
					payload = msgp.AppendString(payload, "p")
					payload = msgp.AppendString(payload, pad)
					buf = wsclient.AppendMsgpackEvent(buf[:0], id, "echo", payload)
				} else {
					payload = fmt.Appendf(payload[:0], `{"t":%d,"i":%d,"p":"%s"}`, start.UnixMicro(), ci, pad)
					buf = wsclient.AppendEvent(buf[:0], id, "echo", payload)
				}
				if err := send(c, conn, buf); err != nil {
					errs.Add(1)
					return
				}
				for {
					conn.SetReadDeadline(time.Now().Add(10 * time.Second))
					_, m, err := conn.ReadMessage()
					if err != nil {
						errs.Add(1)
						errMu.Lock()
						if firstErr == nil {
							firstErr = fmt.Errorf("echo: client %d waiting for ack %d: %w", ci, id, err)
						}
						errMu.Unlock()
						return
					}
					if conn.HandleEngine(m) {
						continue
					}
					if c.msgpack {
						if p, err := wsclient.DecodePacket(m); err == nil && p.Type == wsclient.PacketAck && p.ID == id {
							break
						}
					} else if got, ok := wsclient.AckID(m); ok && got == id {
						break
					}
				}
				if measuring.Load() {
					h.Record(time.Since(start))
					acks.Add(1)
				}
			}
		}()
	}
	measureWindow(c, r, &measuring, &stop)
	wg.Wait()
	r.Ops = acks.Load()
	r.Rate = float64(r.Ops) / r.Seconds
	setLatency(r, &h)
	r.Errors = errs.Load()
	return r, firstErr
}

// runIdle measures the server's RSS growth for c.clients idle connections:
// RSS after a GC before connecting, and after they all connected, both
// before and after another GC.
func runIdle(c config) (*Result, error) {
	n := c.clients
	r := &Result{Scenario: "idle", Clients: n}
	if c.pid <= 0 {
		return r, errors.New("idle: -pid is required")
	}
	serverGC(c.addr)
	time.Sleep(500 * time.Millisecond)
	before, err := proc.RSS(c.pid)
	if err != nil {
		return r, err
	}
	r.RSSBefore = before
	// Readers answer pings, as idle clients do.
	reader := func(conn *wsclient.Conn) {
		go func() {
			for {
				_, m, err := conn.ReadMessage()
				if err != nil {
					return
				}
				conn.HandleEngine(m)
			}
		}()
	}
	set, err := connectIdle(c, r, reader)
	if err != nil {
		return r, err
	}
	defer set.close()
	logf("idle: %d connected (%.0f/s)", n, r.ConnRate)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.ServerClients = serverClients(c.addr)
		if r.ServerClients >= int64(n) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.ServerClients < int64(n) {
		return r, fmt.Errorf("idle: the server counts %d clients of %d", r.ServerClients, n)
	}
	time.Sleep(2 * time.Second) // let lazily started work settle
	r.RSSAfterRaw, _ = proc.RSS(c.pid)
	serverGC(c.addr)
	time.Sleep(time.Second)
	r.RSSAfter, err = proc.RSS(c.pid)
	if err != nil {
		return r, err
	}
	if st := serverStats(c.addr); st != nil {
		r.Stats = st // taken while every connection is up
	}
	r.PerConn = float64(r.RSSAfter-r.RSSBefore) / float64(n)
	r.PerConnRaw = float64(r.RSSAfterRaw-r.RSSBefore) / float64(n)
	r.Ops = uint64(n)
	if c.heapProfile != "" {
		if err := fetch(c.addr, "/debug/pprof/heap", c.heapProfile); err != nil {
			logf("heap profile: %v", err)
		}
		if err := fetch(c.addr, "/debug/pprof/goroutine", strings.TrimSuffix(c.heapProfile, ".pprof")+".goroutine.pprof"); err != nil {
			logf("goroutine profile: %v", err)
		}
	}
	return r, set.hold(c, r)
}

// runHandshake runs c.concurrency loops of: connect a websocket-only
// session, join "/", reset the TCP connection.
func runHandshake(c config) (*Result, error) {
	r := &Result{Scenario: "handshake", Clients: c.concurrency}
	var h hist.Histogram
	var count, errs atomic.Uint64
	var measuring, stop atomic.Bool
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for range c.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				start := time.Now()
				conn, err := wsclient.ConnectSocketIO(c.addr, wsclient.Options{ReadBuffer: 4096, Msgpack: c.msgpack})
				if err != nil {
					errs.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					time.Sleep(10 * time.Millisecond)
					continue
				}
				el := time.Since(start)
				conn.Reset()
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
	r.Errors = errs.Load()
	if r.Errors > 0 && firstErr != nil {
		r.ErrorMsg = "first error: " + firstErr.Error()
	}
	if r.Ops == 0 {
		return r, fmt.Errorf("handshake: none completed: %v", firstErr)
	}
	return r, nil
}

// startCPUProfile fetches the server's CPU profile over the window when
// asked; the returned function waits for it.
// measureWindow lets the scenario's loops warm up for c.warmup, then has
// them count what they do for c.duration (while measuring is set), with
// the CPU of the server and of the load generator in r and, with
// -cpuprofile, the server's profile; then it tells the loops to stop.
func measureWindow(c config, r *Result, measuring, stop *atomic.Bool) {
	time.Sleep(c.warmup)
	cpuProf := startCPUProfile(c)
	measuring.Store(true)
	w := startWindow(c.pid)
	time.Sleep(c.duration)
	measuring.Store(false)
	w.end(r)
	cpuProf()
	stop.Store(true)
}

func startCPUProfile(c config) func() {
	if c.cpuProfile == "" {
		return func() {}
	}
	secs := max(1, int(c.duration.Round(time.Second)/time.Second))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := fetch(c.addr, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), c.cpuProfile); err != nil {
			logf("cpu profile: %v", err)
		}
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(c.duration + 10*time.Second):
			logf("cpu profile: still not received")
		}
	}
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

func fetch(addr, path, file string) error {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func serverGC(addr string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/bench/gc", nil)
	if resp, err := httpClient.Do(req); err == nil {
		resp.Body.Close()
	} else {
		logf("gc: %v", err)
	}
}

func serverStats(addr string) map[string]any {
	resp, err := httpClient.Get("http://" + addr + "/bench/stats?mem")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func serverClients(addr string) int64 {
	st := serverStats(addr)
	n, _ := st["clients"].(float64)
	return int64(n)
}

package main

// The cross-server variant of the broadcast scenario: with -addr2, half of
// the clients connect to a second server that shares the first one's
// broadcasts through Redis. Client 0, the one that triggers, stays on the
// first server (-addr), so every tick is emitted there and reaches the
// second server's clients through Redis.

import (
	"flag"
	"strings"
	"time"

	"github.com/rallyhq/rally/bench/internal/hist"
	"github.com/rallyhq/rally/bench/internal/proc"
	"github.com/rallyhq/rally/bench/internal/wsclient"
)

// crossConfig holds the cross-server flags.
type crossConfig struct {
	addr2       string // the second server, "" for a single-server run
	pid2        int    // its process id, for its CPU time
	redisPid    int    // redis-server's process id, for its CPU time
	cpuProfile2 string // the second server's CPU profile over the window
}

func (cc *crossConfig) register() {
	flag.StringVar(&cc.addr2, "addr2", "", "broadcast: a second server (loopback) sharing the first one's broadcasts through Redis; the odd-numbered clients connect to it")
	flag.IntVar(&cc.pid2, "pid2", 0, "broadcast: the second server's process id, for its CPU time")
	flag.IntVar(&cc.redisPid, "redis-pid", 0, "broadcast: redis-server's process id, for its CPU time")
	flag.StringVar(&cc.cpuProfile2, "cpuprofile2", "", "broadcast: write the second server's CPU profile over the window here (needs -pprof on it)")
}

// CrossFigures are what a broadcast run across two servers adds to its
// Result: the latency apart for the clients of the first server (local:
// the tick was emitted there) and of the second (remote: it came through
// Redis), and the CPU of the second server and of Redis over the window.
// Durations are in microseconds. Result.ServerCPU is the first server's.
type CrossFigures struct {
	Addr2         string  `json:"addr2"`
	LocalClients  int     `json:"local_clients"`
	RemoteClients int     `json:"remote_clients"`
	LocalP50      float64 `json:"local_p50_us"`
	LocalP99      float64 `json:"local_p99_us"`
	RemoteP50     float64 `json:"remote_p50_us"`
	RemoteP99     float64 `json:"remote_p99_us"`
	Server2CPU    float64 `json:"server2_cpu_pct"`
	RedisCPU      float64 `json:"redis_cpu_pct"`
	// Both servers and Redis, in percent of one core.
	ServersCPU float64 `json:"servers_cpu_pct"`
	Stats2     any     `json:"server2_stats,omitempty"`
}

// crossRun follows a broadcast run across two servers. Its methods do
// nothing on a nil *crossRun (a single-server run).
type crossRun struct {
	c             config
	r             *Result
	local, remote hist.Histogram
	start         time.Time
	cpu0          [2]time.Duration // second server, Redis
}

// newCrossRun returns the cross-server bookkeeping of r, or nil without
// -addr2.
func newCrossRun(c config, r *Result) *crossRun {
	if c.cross.addr2 == "" {
		return nil
	}
	r.CrossFigures = &CrossFigures{Addr2: c.cross.addr2}
	return &crossRun{c: c, r: r}
}

// isRemote reports whether client i connects to the second server.
func (x *crossRun) isRemote(i int) bool { return x != nil && i%2 == 1 }

// connectSides opens the broadcast scenario's n clients: all on c.addr,
// or, with -addr2 (x not nil), the odd-numbered ones on the second
// server. It starts reader on each, told which server it is on, as soon
// as it is connected.
func connectSides(c config, x *crossRun, n int, reader func(conn *wsclient.Conn, remote bool)) ([]*wsclient.Conn, float64, error) {
	dial := func(i int) (*wsclient.Conn, error) {
		addr, remote := c.addr, x.isRemote(i)
		if remote {
			addr = c.cross.addr2
		}
		conn, err := wsclient.ConnectSocketIO(addr, wsclient.Options{ReadBuffer: c.readBuf, Msgpack: c.msgpack})
		if err == nil {
			reader(conn, remote)
		}
		return conn, err
	}
	conns, rate, err := connectEach(c, n, dial, nil)
	if err == nil && x != nil {
		x.r.RemoteClients = n / 2
		x.r.LocalClients = n - n/2
	}
	return conns, rate, err
}

// record adds a delivery latency to the side of the client that got it.
func (x *crossRun) record(remote bool, d time.Duration) {
	if x == nil {
		return
	}
	if remote {
		x.remote.Record(d)
	} else {
		x.local.Record(d)
	}
}

// resetLatency forgets the latencies recorded so far (the batch phase's).
func (x *crossRun) resetLatency() {
	if x == nil {
		return
	}
	x.local.Reset()
	x.remote.Reset()
}

// setLatency reports each side's latency quantiles.
func (x *crossRun) setLatency() {
	if x == nil {
		return
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	x.r.LocalP50, x.r.LocalP99 = us(x.local.Quantile(0.50)), us(x.local.Quantile(0.99))
	x.r.RemoteP50, x.r.RemoteP99 = us(x.remote.Quantile(0.50)), us(x.remote.Quantile(0.99))
}

// startWindow notes the second server's and Redis's CPU time at the start
// of the measured window.
func (x *crossRun) startWindow() {
	if x == nil {
		return
	}
	x.start = time.Now()
	for i, pid := range x.pids() {
		if pid > 0 {
			x.cpu0[i], _ = proc.CPUTime(pid)
		}
	}
}

// endWindow reports the CPU the second server and Redis used over the
// window, and takes it out of Result.OthersCPU (which window.end computed
// as everything but the load generator and the first server).
func (x *crossRun) endWindow() {
	if x == nil {
		return
	}
	el := time.Since(x.start)
	var pct [2]float64
	for i, pid := range x.pids() {
		if pid <= 0 {
			continue
		}
		if cpu, err := proc.CPUTime(pid); err == nil {
			pct[i] = 100 * float64(cpu-x.cpu0[i]) / float64(el)
		}
	}
	x.r.Server2CPU, x.r.RedisCPU = pct[0], pct[1]
	x.r.ServersCPU = x.r.ServerCPU + pct[0] + pct[1]
	x.r.OthersCPU = max(0, x.r.OthersCPU-pct[0]-pct[1])
}

func (x *crossRun) pids() [2]int { return [2]int{x.c.cross.pid2, x.c.cross.redisPid} }

// finish takes the second server's stats.
func (x *crossRun) finish() {
	if x == nil {
		return
	}
	if st := serverStats(x.c.cross.addr2); st != nil {
		x.r.Stats2 = st
	}
}

// startCPUProfiles starts the CPU profiles asked of the first server and,
// with -cpuprofile2, of the second; the returned function waits for both.
func startCPUProfiles(c config) func() {
	first := startCPUProfile(c)
	if c.cross.addr2 == "" || c.cross.cpuProfile2 == "" {
		return first
	}
	c2 := c
	c2.addr, c2.cpuProfile = c.cross.addr2, c.cross.cpuProfile2
	second := startCPUProfile(c2)
	return func() { first(); second() }
}

// checkLoopback reports whether addr is a loopback address.
func checkLoopback(addr string) bool {
	return strings.HasPrefix(addr, "127.") || strings.HasPrefix(addr, "localhost:") || strings.HasPrefix(addr, "[::1]:")
}

package main

// The cross-server broadcast scenario: two servers, A and B, share one
// redis-server through their classic Redis adapters; half of the clients
// are on each, client 0 (the trigger) on A. What runs is a pair of
// servers rather than one server: by default every server of -servers
// that has a Redis adapter with itself ("rally pair"), then every ordered
// pair of two different ones ("mixed rally→Node": A is rally, B is Node).
// -pairs A+B,… picks pairs by hand. A server without a Redis adapter is
// n/a with itself and left out of mixed pairs.
//
// A, B and redis-server are all pinned to -server-cpu, the load generator
// to -load-cpu: on a two-core machine the load generator keeps its core,
// and the deliveries/s measure what the whole cluster does with one core.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pair is two servers of a cross-server run: the ticks are emitted on A.
type pair struct {
	A, B peer
}

// Key is the pair's run key, "A+B".
func (p pair) Key() string { return p.A.Key + "+" + p.B.Key }

// Label is the pair's table heading.
func (p pair) Label() string {
	if p.A.Key == p.B.Key {
		return p.A.Label + " pair"
	}
	return "mixed " + p.A.Label + " → " + p.B.Label
}

// crossPairs returns the pairs to run: those of keys ("A+B", servers of
// selected) or, when keys is empty, each selected server with itself, then
// each ordered pair of two different selected servers that both have a
// Redis adapter.
func crossPairs(selected []peer, keys []string) ([]pair, error) {
	if len(keys) > 0 {
		var ps []pair
		for _, k := range keys {
			a, b, ok := strings.Cut(k, "+")
			i := slices.IndexFunc(selected, func(p peer) bool { return p.Key == a })
			j := slices.IndexFunc(selected, func(p peer) bool { return p.Key == b })
			if !ok || i < 0 || j < 0 {
				return nil, fmt.Errorf("-pairs: %q is not A+B with A and B among -servers", k)
			}
			ps = append(ps, pair{selected[i], selected[j]})
		}
		return ps, nil
	}
	var ps []pair
	for _, p := range selected {
		ps = append(ps, pair{p, p})
	}
	for _, a := range selected {
		for _, b := range selected {
			if a.Key != b.Key && a.redis && b.redis {
				ps = append(ps, pair{a, b})
			}
		}
	}
	return ps, nil
}

// runCross runs sc against every pair, o.repeat times interleaved, and
// returns the median try of each.
func runCross(o options, sc scenario, pairs []pair) []Run {
	tries := make([][]Run, len(pairs))
	for i := range max(1, o.repeat) {
		for j, p := range pairs {
			logf("%s: %s (try %d) ...", sc.Key, p.Key(), i+1)
			if o.waitQuiet > 0 {
				waitForQuiet(o.waitQuiet, o.quietPct)
			}
			r := runPair(o, sc, p)
			switch {
			case r.Skipped != "":
				logf("%s: %s: n/a: %s", sc.Key, p.Key(), r.Skipped)
			case r.Error != "":
				logf("%s: %s: FAILED: %s", sc.Key, p.Key(), r.Error)
			default:
				logf("%s: %s: %s", sc.Key, p.Key(), crossSummary(r))
			}
			tries[j] = append(tries[j], r)
		}
	}
	var runs []Run
	for j := range pairs {
		runs = append(runs, median(sc, tries[j]))
	}
	return runs
}

func crossSummary(r Run) string {
	f := func(k string) float64 { v, _ := r.Result[k].(float64); return v }
	return fmt.Sprintf("%.0f/s p50 local %.2fms remote %.2fms, p99 local %.2fms remote %.2fms, CPU A %.0f%% B %.0f%% redis %.0f%%, loadgen %.0f%%",
		f("rate"), f("local_p50_us")/1e3, f("remote_p50_us")/1e3, f("local_p99_us")/1e3, f("remote_p99_us")/1e3,
		f("server_cpu_pct"), f("server2_cpu_pct"), f("redis_cpu_pct"), f("loadgen_cpu_pct"))
}

// started is a process the harness started, with its exit status.
type started struct {
	cmd    *exec.Cmd
	exited chan error
}

// start runs args (already prefixed with the pinning) with its output in
// logPath, in its own process group.
func start(o options, args []string, logPath string) (*started, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = o.procAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	o.setAutogroupNice(cmd.Process.Pid)
	s := &started{cmd: cmd, exited: make(chan error, 1)}
	go func() { s.exited <- cmd.Wait(); log.Close() }()
	return s, nil
}

func (s *started) pid() int { return s.cmd.Process.Pid }

// stopAll stops every process of ps at once.
func stopAll(ps []*started) {
	var wg sync.WaitGroup
	for _, s := range ps {
		wg.Go(func() { stop(s.cmd, s.exited) })
	}
	wg.Wait()
}

// runPair runs sc against p: a fresh redis-server, then A and B on it,
// then the load generator with half of the clients on each.
func runPair(o options, sc scenario, p pair) Run {
	r := Run{Scenario: sc.Key, Server: p.Key()}
	for _, pe := range []peer{p.A, p.B} {
		if !pe.redis {
			r.Skipped = "no Redis adapter in this peer"
			return r
		}
	}
	fail := func(err error) Run { r.Error = err.Error(); return r }
	if _, err := exec.LookPath("redis-server"); err != nil {
		return fail(errors.New("redis-server not found (apt-get install redis-server)"))
	}
	logBase := filepath.Join(o.out, "logs", sc.Key+"-"+p.Key())

	redisAddr, err := freeAddr()
	if err != nil {
		return fail(err)
	}
	host, port, _ := net.SplitHostPort(redisAddr)
	redis, err := start(o, append(o.prefix(o.serverCPU), "redis-server", "--bind", host, "--port", port,
		"--save", "", "--appendonly", "no"), logBase+".redis.log")
	if err != nil {
		return fail(err)
	}
	var procs []*started // stopped together at the end
	defer func() { stopAll(procs) }()
	procs = append(procs, redis)
	if err := waitRedis(redisAddr, redis.exited); err != nil {
		return fail(fmt.Errorf("redis-server: %w (see %s.redis.log)", err, logBase))
	}

	var servers [2]*started
	var addrs [2]string
	profiling := o.profile && sc.profile == "cpu"
	pes := []peer{p.A, p.B}
	for i, pe := range pes { // started together: Node takes a while
		if addrs[i], err = freeAddr(); err != nil {
			return fail(err)
		}
		args := append(o.prefix(o.serverCPU), pe.cmd(addrs[i], profiling && pe.build != "")...)
		args = append(args, "-redis", "redis://"+redisAddr)
		side := string(rune('a' + i))
		if servers[i], err = start(o, args, logBase+"."+side+".server.log"); err != nil {
			return fail(err)
		}
		procs = append(procs, servers[i])
	}
	for i, s := range servers {
		if err := waitReady(addrs[i], s.exited); err != nil {
			side := string(rune('a' + i))
			return fail(fmt.Errorf("server %s (%s): %w (see %s.%s.server.log)", strings.ToUpper(side), pes[i].Key, err, logBase, side))
		}
	}
	// Both servers must be subscribed before the first broadcast.
	if err := waitSubscribers(redisAddr, "socket.io-request#/#", 2); err != nil {
		return fail(err)
	}

	args := append(o.prefix(o.loadCPU), filepath.Join(buildDir, "loadgen"), "-scenario", sc.Kind,
		"-addr", addrs[0], "-pid", strconv.Itoa(servers[0].pid()),
		"-addr2", addrs[1], "-pid2", strconv.Itoa(servers[1].pid()), "-redis-pid", strconv.Itoa(redis.pid()))
	args = append(args, sc.Args...)
	if profiling {
		base, _ := filepath.Abs(filepath.Join(o.out, "profiles", sc.Key+"-"+p.Key()))
		if p.A.build != "" {
			args = append(args, "-cpuprofile", base+".a.cpu.pprof")
		}
		if p.B.build != "" {
			args = append(args, "-cpuprofile2", base+".b.cpu.pprof")
		}
	}
	r.Result, r.Error = runLoadgen(o, args, logBase+".loadgen.log")
	for i, s := range servers {
		select {
		case err := <-s.exited:
			s.exited <- err
			if r.Error == "" {
				side := string(rune('a' + i))
				r.Error = fmt.Sprintf("server %s exited during the run: %v (see %s.%s.server.log)", strings.ToUpper(side), err, logBase, side)
			}
		default:
		}
	}
	return r
}

// runLoadgen runs the load generator and returns its result and what
// failed, if anything.
func runLoadgen(o options, args []string, logPath string) (map[string]any, string) {
	ctx, cancel := context.WithTimeout(context.Background(), o.runTimeout)
	defer cancel()
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err.Error()
	}
	defer log.Close()
	lg := exec.CommandContext(ctx, args[0], args[1:]...)
	var stdout bytes.Buffer
	lg.Stdout, lg.Stderr = &stdout, log
	lg.SysProcAttr = o.procAttr()
	runErr := lg.Start()
	if runErr == nil {
		o.setAutogroupNice(lg.Process.Pid)
		runErr = lg.Wait()
	}
	var res map[string]any
	if line := bytes.TrimSpace(stdout.Bytes()); len(line) > 0 {
		if err := json.Unmarshal(line, &res); err != nil {
			return nil, fmt.Sprintf("bad loadgen output: %v", err)
		}
	}
	if msg, _ := res["error"].(string); msg != "" && runErr != nil {
		return res, msg
	}
	if runErr != nil {
		return res, fmt.Sprintf("loadgen: %v (see %s)", runErr, logPath)
	}
	return res, ""
}

// waitRedis waits until redis-server at addr answers PING.
func waitRedis(addr string, exited chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		select {
		case e := <-exited:
			exited <- e
			return fmt.Errorf("exited at start: %v", e)
		default:
		}
		var reply any
		if reply, err = redisCommand(addr, "PING"); err == nil {
			if reply == "PONG" {
				return nil
			}
			err = fmt.Errorf("PING answered %v", reply)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not answering within 10s: %v", err)
}

// waitSubscribers waits until channel has n subscribers (PUBSUB NUMSUB).
func waitSubscribers(addr, channel string, n int64) error {
	deadline := time.Now().Add(10 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		reply, err := redisCommand(addr, "PUBSUB", "NUMSUB", channel)
		if err != nil {
			return fmt.Errorf("redis PUBSUB NUMSUB: %w", err)
		}
		if a, ok := reply.([]any); ok && len(a) == 2 {
			if got, _ = a[1].(int64); got >= n {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%d servers subscribed to %s after 10s, want %d", got, channel, n)
}

// redisCommand sends one command to the Redis at addr on a connection of
// its own and returns the reply: a string (simple or bulk), an int64, nil
// or a []any; an error reply is returned as an error.
func redisCommand(addr string, args ...string) (any, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	req := fmt.Appendf(nil, "*%d\r\n", len(args))
	for _, a := range args {
		req = fmt.Appendf(req, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(conn))
}

// readRESP reads one RESP2 value.
func readRESP(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("empty RESP line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New("redis: " + body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected RESP line %q", line)
}

// crossScenario is the broadcast scenario across two servers: n clients,
// half on each, 20 ticks per trigger, then one tick at a time for lat;
// win is the -duration and -warmup arguments.
func crossScenario(key string, n int, lat time.Duration, win []string) scenario {
	return scenario{Key: key, Kind: "broadcast", Cross: true, profile: "cpu",
		Title: fmt.Sprintf("broadcast to %s clients across two servers through Redis", fmtCount(float64(n))),
		Args:  append([]string{"-clients", strconv.Itoa(n), "-batch", "20", "-latency-duration", lat.String()}, win...)}
}

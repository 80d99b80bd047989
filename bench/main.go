// Command bench runs rally side by side with other Socket.IO servers and
// reports how they compare. From the repository root:
//
//	go -C bench run .          # every scenario against every server, a few minutes
//	go -C bench run . -smoke   # a tiny configuration, for CI
//
// It builds the Go peer servers and the load generator into bench/.build,
// installs the Node peer from bench/package-lock.json when node_modules is
// missing, then for each scenario starts each server on 127.0.0.1 pinned
// to one core (taskset) and runs the load generator pinned to another.
// Results go to -out (bench/results by default): results.md (the table),
// results.json (every figure) and chart.svg. See bench/README.md.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rallyhq/rally/bench/internal/proc"
)

// peer is one server under test.
type peer struct {
	Key   string // flag value and file names
	Label string // table heading
	// cmd returns the command line that serves on addr.
	cmd func(addr string, pprof bool) []string
	// build is the Go package to build, or "" for Node.
	build string
	// recovery: the server takes -recovery, which turns connection state
	// recovery on.
	recovery bool
	// msgpack: the server takes -parser msgpack, which makes it speak
	// socket.io-msgpack-parser's format.
	msgpack bool
	// redis: the server takes -redis URL, which shares its broadcasts
	// through a classic Redis adapter (the cross-server scenario).
	redis bool
	// polling: the server has Engine.IO's HTTP long-polling transport.
	polling bool
}

var peers = []peer{
	{Key: "rally", Label: "rally", build: "./servers/rally", recovery: true, msgpack: true, redis: true, polling: true,
		cmd: goServer("rally")},
	{Key: "node", Label: "Node socket.io", build: "", recovery: true, msgpack: true, redis: true, polling: true,
		cmd: func(addr string, _ bool) []string {
			return []string{"node", "--expose-gc", "servers/node/server.js", "-addr", addr}
		}},
	{Key: "zishang", Label: "zishang520", build: "./servers/zishang", polling: true,
		cmd: goServer("zishang")},
	{Key: "bare", Label: "bare coder/websocket", build: "./servers/bare",
		cmd: goServer("bare")},
}

func goServer(name string) func(string, bool) []string {
	return func(addr string, pprof bool) []string {
		args := []string{filepath.Join(buildDir, name), "-addr", addr}
		if pprof {
			args = append(args, "-pprof")
		}
		return args
	}
}

const buildDir = ".build"

// scenario is one load the load generator applies.
type scenario struct {
	Key   string
	Title string
	Kind  string // loadgen -scenario
	Args  []string
	// profile: which profile to take of Go servers with -profile.
	profile string // "cpu", "heap" or ""
	// Recovery runs the servers with connection state recovery on
	// (-recovery); those without it are skipped (n/a).
	Recovery bool
	// Msgpack runs the servers and the load generator with
	// socket.io-msgpack-parser's format (-parser msgpack); the servers
	// without it are skipped (n/a).
	Msgpack bool
	// Cross runs pairs of servers sharing one redis-server, not single
	// servers (see crossserver.go).
	Cross bool
	// Polling: the load is over HTTP long-polling; the servers without
	// it are skipped (n/a).
	Polling bool
	// Files: open files each process needs (0: the default limit does).
	Files uint64
	// Timeout replaces the harness's run timeout when longer.
	Timeout time.Duration
}

// withMsgpack returns sc and its counterpart with the msgpack parser,
// keyed KEY-msgpack.
func withMsgpack(sc scenario) []scenario {
	mp := sc
	mp.Key += "-msgpack"
	mp.Title += ", msgpack parser"
	mp.Args = append(slices.Clone(sc.Args), "-parser", "msgpack")
	mp.Msgpack = true
	return []scenario{sc, mp}
}

// jitterScenarios are the jitter scenario with and without connection
// state recovery: n clients, rate broadcasts/s for d, each connection cut
// after cutEvery on average and down for down[0]–down[1].
func jitterScenarios(n int, rate float64, d, warmup, cutEvery time.Duration, down [2]time.Duration) []scenario {
	args := []string{"-clients", strconv.Itoa(n), "-rate", strconv.FormatFloat(rate, 'f', -1, 64),
		"-duration", d.String(), "-warmup", warmup.String(), "-cut-every", cutEvery.String(),
		"-down-min", down[0].String(), "-down-max", down[1].String()}
	title := fmt.Sprintf("%d clients cut every ~%s, %.0f broadcasts/s", n, cutEvery, rate)
	return []scenario{
		{Key: "jitter-recovery", Title: title + ", recovery on", Kind: "jitter",
			Args: append(slices.Clone(args), "-recovery"), Recovery: true},
		{Key: "jitter-norecovery", Title: title + ", recovery off", Kind: "jitter", Args: args},
	}
}

func baseScenarios(smoke bool, d time.Duration) []scenario {
	if smoke {
		short := []string{"-duration", "700ms", "-warmup", "200ms"}
		var ss []scenario
		ss = append(ss, withMsgpack(scenario{Key: "broadcast-100", Title: "broadcast to 100 clients", Kind: "broadcast",
			Args: append([]string{"-clients", "100", "-batch", "20", "-latency-duration", "500ms"}, short...), profile: "cpu"})...)
		ss = append(ss, withMsgpack(scenario{Key: "echo-10", Title: "emit-with-ack echo, 10 clients", Kind: "echo",
			Args: append([]string{"-clients", "10"}, short...), profile: "cpu"})...)
		return append(append(ss,
			scenario{Key: "idle-500", Title: "500 idle connections, parked as in idle-100k", Kind: "idle",
				Args: []string{"-clients", "500", "-park", "-sources", "2"}, profile: "heap"},
			scenario{Key: "handshake", Title: "websocket-only handshakes, 10 parallel", Kind: "handshake",
				Args: append([]string{"-concurrency", "10"}, short...), profile: "cpu"},
			crossScenario("cross-broadcast-100", 100, 200*time.Millisecond, []string{"-duration", "400ms", "-warmup", "100ms"})),
			jitterScenarios(20, 50, 1500*time.Millisecond, 200*time.Millisecond, 250*time.Millisecond,
				[2]time.Duration{50 * time.Millisecond, 150 * time.Millisecond})...)
	}
	win := []string{"-duration", d.String(), "-warmup", "1s"}
	ss := withMsgpack(scenario{Key: "broadcast-1k", Title: "broadcast to 1,000 clients", Kind: "broadcast",
		Args: append([]string{"-clients", "1000", "-batch", "20", "-latency-duration", "3s"}, win...), profile: "cpu"})
	ss = append(ss, scenario{Key: "broadcast-5k", Title: "broadcast to 5,000 clients", Kind: "broadcast",
		Args: append([]string{"-clients", "5000", "-batch", "4", "-latency-duration", "3s"}, win...), profile: "cpu"})
	ss = append(ss, withMsgpack(scenario{Key: "echo-100", Title: "emit-with-ack echo, 100 clients", Kind: "echo",
		Args: append([]string{"-clients", "100"}, win...), profile: "cpu"})...)
	return append(append(ss,
		scenario{Key: "idle-10k", Title: "10,000 idle connections", Kind: "idle",
			Args: []string{"-clients", "10000"}, profile: "heap"},
		scenario{Key: "handshake", Title: "websocket-only handshakes, 50 parallel", Kind: "handshake",
			Args: append([]string{"-concurrency", "50"}, win...), profile: "cpu"},
		crossScenario("cross-broadcast", 1000, 3*time.Second, win)),
		jitterScenarios(500, 50, 15*time.Second, time.Second, 2*time.Second,
			[2]time.Duration{100 * time.Millisecond, time.Second})...)
}

// Run is one scenario against one server.
type Run struct {
	Scenario string         `json:"scenario"`
	Server   string         `json:"server"`
	Result   map[string]any `json:"result,omitempty"`
	Error    string         `json:"error,omitempty"`
	// Skipped says why the server does not run the scenario (n/a).
	Skipped string `json:"skipped,omitempty"`
	// Tries holds every repetition's result when -repeat > 1; Result is
	// the one with the median primary figure.
	Tries []map[string]any `json:"tries,omitempty"`
}

type options struct {
	smoke      bool
	servers    []string
	scenarios  []string
	out        string
	profile    bool
	serverCPU  int
	loadCPU    int
	duration   time.Duration
	skipBuild  bool
	repeat     int
	runTimeout time.Duration
	waitQuiet  time.Duration
	quietPct   float64
	nice       int
	pairs      []string
}

func main() {
	var o options
	var servers, scens, pairs string
	flag.BoolVar(&o.smoke, "smoke", false, "tiny configuration that runs in well under a minute (CI)")
	flag.StringVar(&servers, "servers", "rally,node,zishang,bare", "servers to run, comma-separated")
	flag.StringVar(&scens, "scenarios", "", "scenarios to run, comma-separated keys (default all)")
	flag.StringVar(&o.out, "out", "results", "directory for results.md, results.json, chart.svg, logs/ and profiles/")
	flag.BoolVar(&o.profile, "profile", false, "take CPU (broadcast, echo, handshake) and heap (idle) profiles of the Go servers into OUT/profiles")
	flag.IntVar(&o.serverCPU, "server-cpu", 0, "core the servers are pinned to (-1: not pinned)")
	flag.IntVar(&o.loadCPU, "load-cpu", 1, "core the load generator is pinned to (-1: not pinned)")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured window of each timed scenario")
	flag.BoolVar(&o.skipBuild, "skip-build", false, "use the binaries already in .build")
	flag.DurationVar(&o.waitQuiet, "wait-quiet", 0, "before each run, wait up to this long for other processes to use less than -quiet-pct of the CPUs (the machine may be shared)")
	flag.Float64Var(&o.quietPct, "quiet-pct", 20, "CPU use by other processes, in percent of one core, below which the machine counts as quiet")
	flag.IntVar(&o.nice, "nice", 0, "run servers and the load generator at this nice level (negative: ahead of other processes on a shared machine; needs root)")
	flag.StringVar(&pairs, "pairs", "", "cross-server scenarios: pairs of servers A+B (of -servers) to run, comma-separated (default: each with itself, then every mixed pair)")
	flag.IntVar(&o.repeat, "repeat", 1, "run each scenario against each server this many times (interleaved) and report the median")
	flag.IntVar(&bigIdleClients, "big-idle", bigIdleClients, "connections of idle-100k (fewer where the open-file limit cannot reach 100,000)")
	rerenderDir := flag.String("rerender", "", "write DIR/results.md and DIR/chart.svg again from DIR/results.json, and run nothing")
	flag.Parse()
	if *rerenderDir != "" {
		if err := rerender(*rerenderDir); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	o.servers = splitList(servers)
	o.scenarios = splitList(scens)
	o.pairs = splitList(pairs)
	o.runTimeout = 150 * time.Second
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(o options) error {
	if _, err := os.Stat("servers/node/server.js"); err != nil {
		return errors.New("run from the bench directory: go -C bench run . (from the repository root)")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return errors.New("taskset not found (util-linux)")
	}
	if n := numCPU(); o.serverCPU >= n || o.loadCPU >= n {
		return fmt.Errorf("cores %d and %d asked, %d present", o.serverCPU, o.loadCPU, n)
	}
	if limit, err := proc.RaiseFileLimit(); err != nil {
		return err
	} else if limit < 12000 {
		logf("warning: open-file limit is %d; the idle scenario needs more than 10,000", limit)
	}

	var selected []peer
	for _, key := range o.servers {
		i := slices.IndexFunc(peers, func(p peer) bool { return p.Key == key })
		if i < 0 {
			return fmt.Errorf("unknown server %q", key)
		}
		selected = append(selected, peers[i])
	}
	var scens []scenario
	for _, s := range scenarios(o.smoke, o.duration) {
		if len(o.scenarios) == 0 || slices.Contains(o.scenarios, s.Key) {
			scens = append(scens, s)
		}
	}
	if len(scens) == 0 {
		return fmt.Errorf("no scenario matches %v", o.scenarios)
	}
	pairs, err := crossPairs(selected, o.pairs)
	if err != nil {
		return err
	}

	if !o.skipBuild {
		if err := build(selected); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Join(o.out, "logs"), 0o755); err != nil {
		return err
	}
	if o.profile {
		if err := os.MkdirAll(filepath.Join(o.out, "profiles"), 0o755); err != nil {
			return err
		}
	}

	m := describeMachine(o)
	var runs []Run
	start := time.Now()
	for _, sc := range scens {
		if sc.Cross {
			runs = append(runs, runCross(o, sc, pairs)...)
			continue
		}
		tries := make([][]Run, len(selected))
		for i := range max(1, o.repeat) {
			for j, p := range selected {
				logf("%s: %s (try %d) ...", sc.Key, p.Key, i+1)
				if o.waitQuiet > 0 {
					waitForQuiet(o.waitQuiet, o.quietPct)
				}
				r := runOne(o, sc, p)
				if r.Skipped != "" {
					logf("%s: %s: n/a: %s", sc.Key, p.Key, r.Skipped)
				} else if r.Error != "" {
					logf("%s: %s: FAILED: %s", sc.Key, p.Key, r.Error)
				} else {
					logf("%s: %s: %s", sc.Key, p.Key, summary(r))
				}
				tries[j] = append(tries[j], r)
			}
		}
		for j := range selected {
			runs = append(runs, median(sc, tries[j]))
		}
	}
	m.Elapsed = time.Since(start).Round(time.Second).String()
	fillVersions(&m, runs)

	rep := report{Machine: m, Scenarios: scens, Peers: selected, Runs: runs}
	md := rep.markdown()
	fmt.Println(md)
	if err := os.WriteFile(filepath.Join(o.out, "results.md"), []byte(md), 0o644); err != nil {
		return err
	}
	js, _ := json.MarshalIndent(rep.jsonView(), "", "  ")
	if err := os.WriteFile(filepath.Join(o.out, "results.json"), js, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(o.out, "chart.svg"), rep.chart(), 0o644); err != nil {
		return err
	}
	logf("wrote %s/results.md, results.json and chart.svg (%s)", o.out, m.Elapsed)
	for _, r := range runs {
		if r.Error != "" {
			return errors.New("some runs failed; see the table and " + filepath.Join(o.out, "logs"))
		}
	}
	return nil
}

// build compiles the load generator and the Go servers, and installs the
// Node peer from the lockfile when it is missing.
func build(selected []peer) error {
	targets := map[string]string{"loadgen": "./cmd/loadgen"}
	for _, p := range selected {
		if p.build != "" {
			targets[p.Key] = p.build
		}
	}
	for name, pkg := range targets {
		logf("building %s", pkg)
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, name), pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s: %w", pkg, err)
		}
	}
	if slices.ContainsFunc(selected, func(p peer) bool { return p.Key == "node" }) {
		if _, err := exec.LookPath("node"); err != nil {
			return errors.New("node not found; install Node 20+ or leave it out with -servers")
		}
		if !nodeInstalled() {
			logf("installing the Node peer (npm ci)")
			cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("npm ci: %w", err)
			}
		}
	}
	return nil
}

// nodeInstalled reports whether node_modules holds what package-lock.json
// says: npm writes its own copy of the lockfile there when it installs.
func nodeInstalled() bool {
	want, err1 := os.ReadFile("package-lock.json")
	have, err2 := os.ReadFile("node_modules/.package-lock.json")
	if err1 != nil || err2 != nil {
		return false
	}
	var w, h struct {
		Packages map[string]json.RawMessage `json:"packages"`
	}
	if json.Unmarshal(want, &w) != nil || json.Unmarshal(have, &h) != nil {
		return false
	}
	for name := range w.Packages {
		if _, ok := h.Packages[name]; name != "" && !ok {
			return false
		}
	}
	return true
}

// waitForQuiet waits until the machine's CPU use, with no server or load
// generator of ours running, stays below pct of one core for a second, or
// until max has passed.
func waitForQuiet(max time.Duration, pct float64) {
	deadline := time.Now().Add(max)
	for {
		b0, err := proc.BusyTime()
		if err != nil {
			return
		}
		time.Sleep(time.Second)
		b1, _ := proc.BusyTime()
		busy := 100 * float64(b1-b0) / float64(time.Second)
		if busy < pct {
			return
		}
		if time.Now().After(deadline) {
			logf("machine still busy (%.0f %% of a core used by others); running anyway", busy)
			return
		}
		logf("machine busy (%.0f %% of a core used by others); waiting", busy)
		time.Sleep(2 * time.Second)
	}
}

// median returns the try with the median primary figure (the first failed
// try if all failed), with every try's result attached when there are
// several.
func median(sc scenario, tries []Run) Run {
	field := "rate"
	switch sc.Kind {
	case "idle":
		field = "per_conn_bytes"
	case "jitter":
		field = "delivered_pct"
	}
	var ok []Run
	for _, t := range tries {
		if t.Error == "" {
			ok = append(ok, t)
		}
	}
	if len(ok) == 0 {
		return tries[0]
	}
	slices.SortFunc(ok, func(a, b Run) int {
		x, _ := a.Result[field].(float64)
		y, _ := b.Result[field].(float64)
		return cmp.Compare(x, y)
	})
	r := ok[(len(ok)-1)/2]
	if len(tries) > 1 {
		r.Tries = nil
		for _, t := range tries {
			res := t.Result
			if t.Error != "" {
				res = map[string]any{"error": t.Error}
			}
			r.Tries = append(r.Tries, res)
		}
	}
	return r
}

// freeAddr returns a loopback address with a port nobody listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func runOne(o options, sc scenario, p peer) Run {
	r := Run{Scenario: sc.Key, Server: p.Key}
	if sc.Recovery && !p.recovery {
		r.Skipped = "no connection state recovery in this peer"
		return r
	}
	if sc.Msgpack && !p.msgpack {
		r.Skipped = "no socket.io-msgpack-parser format in this peer"
		return r
	}
	if sc.Polling && !p.polling {
		r.Skipped = "no HTTP long-polling transport in this peer"
		return r
	}
	if err := checkFiles(sc); err != nil {
		r.Skipped = err.Error() // the machine's limit, not the server's failure
		return r
	}
	addr, err := freeAddr()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	logBase := filepath.Join(o.out, "logs", sc.Key+"-"+p.Key)
	profiling := o.profile && p.build != "" && sc.profile != ""

	srvLog, err := os.Create(logBase + ".server.log")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer srvLog.Close()
	args := append(o.prefix(o.serverCPU), p.cmd(addr, profiling)...)
	if sc.Recovery {
		args = append(args, "-recovery")
	}
	if sc.Msgpack {
		args = append(args, "-parser", "msgpack")
	}
	srv := exec.Command(args[0], args[1:]...)
	srv.Stdout, srv.Stderr = srvLog, srvLog
	srv.SysProcAttr = o.procAttr()
	if err := srv.Start(); err != nil {
		r.Error = err.Error()
		return r
	}
	o.setAutogroupNice(srv.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer stop(srv, exited)
	if err := waitReady(addr, exited); err != nil {
		r.Error = err.Error()
		return r
	}

	lgArgs := append(o.prefix(o.loadCPU), filepath.Join(buildDir, "loadgen"),
		"-scenario", sc.Kind, "-addr", addr, "-pid", strconv.Itoa(srv.Process.Pid))
	lgArgs = append(lgArgs, sc.Args...)
	if profiling {
		base, _ := filepath.Abs(filepath.Join(o.out, "profiles", sc.Key+"-"+p.Key))
		if sc.profile == "cpu" {
			lgArgs = append(lgArgs, "-cpuprofile", base+".cpu.pprof")
		} else {
			lgArgs = append(lgArgs, "-heapprofile", base+".heap.pprof")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(o.runTimeout, sc.Timeout))
	defer cancel()
	lg := exec.CommandContext(ctx, lgArgs[0], lgArgs[1:]...)
	var stdout bytes.Buffer
	lgLog, err := os.Create(logBase + ".loadgen.log")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer lgLog.Close()
	lg.Stdout, lg.Stderr = &stdout, lgLog
	lg.SysProcAttr = o.procAttr()
	runErr := lg.Start()
	if runErr == nil {
		o.setAutogroupNice(lg.Process.Pid)
		runErr = lg.Wait()
	}
	if line := bytes.TrimSpace(stdout.Bytes()); len(line) > 0 {
		if err := json.Unmarshal(line, &r.Result); err != nil {
			r.Error = fmt.Sprintf("bad loadgen output: %v", err)
		}
	}
	if msg, _ := r.Result["error"].(string); msg != "" && runErr != nil {
		r.Error = msg
	} else if runErr != nil && r.Error == "" {
		r.Error = fmt.Sprintf("loadgen: %v (see %s.loadgen.log)", runErr, logBase)
	}
	select {
	case err := <-exited:
		exited <- err
		if r.Error == "" {
			r.Error = fmt.Sprintf("server exited during the run: %v (see %s.server.log)", err, logBase)
		}
	default:
	}
	return r
}

// prefix returns the command prefix that pins a process to cpu (and sets
// its nice level); both exec, so the process keeps the pid.
func (o options) prefix(cpu int) []string {
	var p []string
	if o.nice != 0 {
		p = append(p, "nice", "-n", strconv.Itoa(o.nice))
	}
	if cpu < 0 {
		return p
	}
	return append(p, "taskset", "-c", strconv.Itoa(cpu))
}

// procAttr puts a started process in its own process group; with -nice,
// in its own session, so that it gets an autogroup of its own.
func (o options) procAttr() *syscall.SysProcAttr {
	if o.nice != 0 {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Setpgid: true}
}

// setAutogroupNice sets the nice level of the autogroup of pid, a session
// leader we started. Where the kernel groups processes by session
// (sched_autogroup_enabled), a process's own nice level only orders it
// within its session: the group's level is what weighs against the other
// sessions' processes.
func (o options) setAutogroupNice(pid int) {
	if o.nice == 0 {
		return
	}
	path := fmt.Sprintf("/proc/%d/autogroup", pid)
	if _, err := os.Stat(path); err != nil {
		return
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(o.nice)), 0); err != nil {
		logf("setting %s: %v", path, err)
	}
}

// waitReady polls /bench/stats until the server answers.
func waitReady(addr string, exited chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	c := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("server exited at start: %v", err)
		default:
		}
		if resp, err := c.Get("http://" + addr + "/bench/stats"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("server not ready within 60s")
}

// stop terminates the server's process group, then kills it.
func stop(cmd *exec.Cmd, exited chan error) {
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
	}
	time.Sleep(300 * time.Millisecond) // let the kernel release the sockets
}

func summary(r Run) string {
	f := func(k string) float64 { v, _ := r.Result[k].(float64); return v }
	switch r.Result["scenario"] {
	case "idle":
		return fmt.Sprintf("%.0f B/conn (raw %.0f), connected in %.1fs", f("per_conn_bytes"), f("per_conn_raw_bytes"), f("connect_seconds"))
	case "jitter":
		s := fmt.Sprintf("%.0f broadcasts, %.2f%% delivered, %.0f duplicates, %.0f/%.0f reconnects recovered, ",
			f("broadcasts"), f("delivered_pct"), f("duplicates"), f("recovered"), f("reconnects"))
		if f("recovered") > 0 {
			s += fmt.Sprintf("replay p50 %.2fms p99 %.2fms, ", f("p50_us")/1e3, f("p99_us")/1e3)
		}
		return s + fmt.Sprintf("server CPU %.0f%%", f("server_cpu_pct"))
	default:
		return fmt.Sprintf("%.0f/s p50 %.2fms p99 %.2fms server CPU %.0f%% loadgen CPU %.0f%%",
			f("rate"), f("p50_us")/1e3, f("p99_us")/1e3, f("server_cpu_pct"), f("loadgen_cpu_pct"))
	}
}

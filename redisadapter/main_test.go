package redisadapter_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rallyhq/rally/sockettest"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// Generous: the machines that run these tests may be busy.
	sockettest.Timeout = 15 * time.Second
	goleak.VerifyTestMain(m)
}

// redisServer is a redis-server process started by a test on a free
// loopback port, without persistence, stopped when the test ends.
type redisServer struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	Addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// startRedis starts a redis-server for the test. Without the binary the
// test is skipped, or fails when CI is "true".
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not found in PATH; install it (Debian: apt-get install -y redis-server)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the Redis tests must not be skipped)", msg)
		}
		t.Skip(msg)
	}
	r := &redisServer{t: t, bin: bin, dir: t.TempDir()}
	var lastErr error
	for range 5 {
		r.port = freePort(t)
		if lastErr = r.launch(); lastErr == nil {
			r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// launch starts the process and waits until it answers PING.
func (r *redisServer) launch() error {
	cmd := exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--daemonize", "no", "--loglevel", "warning")
	out := new(lockedBuilder)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v: %s", err, out.String())
		default:
		}
		if ping("127.0.0.1:"+strconv.Itoa(r.port)) == nil {
			r.mu.Lock()
			r.cmd, r.exited = cmd, exited
			r.mu.Unlock()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not answer within 10s: %s", out.String())
}

type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// ping checks that a Redis server answers on addr, with a raw RESP PING.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", buf[:n])
	}
	return nil
}

// Stop stops the server (SIGTERM, then SIGKILL after 5s) and waits for it.
func (r *redisServer) Stop() { r.halt(syscall.SIGTERM) }

// Kill stops the server at once (SIGKILL), as a crash would.
func (r *redisServer) Kill() { r.halt(syscall.SIGKILL) }

func (r *redisServer) halt(sig syscall.Signal) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd, r.exited = nil, nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Start starts a stopped server again on the same port.
func (r *redisServer) Start() {
	r.t.Helper()
	if err := r.launch(); err != nil {
		r.t.Fatalf("restarting redis-server: %v", err)
	}
}

// Client returns a client of the server, closed when the test ends.
func (r *redisServer) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { c.Close() })
	return c
}

// URL is the server's redis:// URL.
func (r *redisServer) URL() string { return "redis://" + r.Addr }

// logRecorder is a slog handler that keeps every record, for tests that
// check what the adapter logs, and passes them on to the test log.
type logRecorder struct {
	t       testing.TB
	mu      *sync.Mutex
	records *[]string
	attrs   []slog.Attr
}

func newLogRecorder(t testing.TB) (*slog.Logger, *logRecorder) {
	h := &logRecorder{t: t, mu: new(sync.Mutex), records: new([]string)}
	return slog.New(h), h
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.mu.Lock()
	*h.records = append(*h.records, b.String())
	h.mu.Unlock()
	return nil
}

func (h *logRecorder) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), attrs...)
	return &c
}

func (h *logRecorder) WithGroup(string) slog.Handler { return h }

// Lines returns the records that contain every one of the substrings.
func (h *logRecorder) Lines(substrings ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
next:
	for _, r := range *h.records {
		for _, s := range substrings {
			if !strings.Contains(r, s) {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

// All returns every record.
func (h *logRecorder) All() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.records...)
}

// eventually polls cond every 10ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Package nodetest runs Node.js scripts from Go tests, to check rally
// against the official socket.io-client.
//
// The scripts live in testdata/interop/ of the module and load
// socket.io-client from testdata/node_modules, installed with
//
//	npm ci --prefix testdata
//
// A script talks to its test through JSON lines: every line it prints on
// stdout is one JSON object, by convention with an "event" key naming what
// happened; the test can write JSON lines to its stdin. The test waits for
// lines with a timeout; stderr is kept for failure messages. A line whose
// event is "fatal" (a script's uncaught error) fails the test's next wait.
//
// Typical use:
//
//	p := nodetest.Start(t, "hello.js", nodetest.Options{Env: []string{"RALLY_URL=" + srv.URL}})
//	p.Send(map[string]any{"op": "emit", "ev": "ping"})
//	l := p.WaitEvent(5*time.Second, "log", map[string]any{"args": []any{"Hello!"}})
//
// When node or the npm packages are missing the test is skipped, with the
// command that fixes it, except when the environment variable CI is "true":
// then it fails, so that CI never silently skips interop tests.
package nodetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// FatalEvent is the event of the line a script prints when it fails.
const FatalEvent = "fatal"

// DefaultTimeout bounds the life of a script when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Minute

// Options configures a script run.
type Options struct {
	// Args are passed to the script after its path.
	Args []string
	// Env holds extra "KEY=value" entries added to the test's environment.
	Env []string
	// Timeout bounds the whole run; the process is killed when it ends.
	// Zero means DefaultTimeout.
	Timeout time.Duration
}

// Line is one line a script printed on stdout.
type Line struct {
	// Raw is the line's text.
	Raw string
	// Event is the value of the line's "event" key, or "".
	Event string
	// Fields holds the line's keys, decoded as encoding/json decodes into
	// any (numbers are float64, binary printed by the scripts as objects).
	Fields map[string]any
}

// Decode decodes the line into v.
func (l Line) Decode(v any) error { return json.Unmarshal([]byte(l.Raw), v) }

// Get returns the value of a key of the line, or nil.
func (l Line) Get(key string) any { return l.Fields[key] }

// Text returns the value of a key when it is a string, or "".
func (l Line) Text(key string) string {
	s, _ := l.Fields[key].(string)
	return s
}

// Process is a running script.
type Process struct {
	t      testing.TB
	script string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	cancel context.CancelFunc
	exited chan struct{} // closed when the process exited and stdout is drained

	mu      sync.Mutex
	lines   []Line
	bad     []string // stdout lines that are not JSON objects
	changed chan struct{}
	exitErr error
	stderr  bytes.Buffer
}

// ModuleRoot returns the directory holding the module's go.mod, found by
// walking up from the working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("nodetest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// unavailable skips the test, or fails it when CI is "true".
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: interop tests must not be skipped)", msg)
	}
	t.Skip(msg)
}

// Node returns the path of the node binary and the module root, after
// checking that socket.io-client is installed. It skips the test (or fails
// it under CI) when either is missing.
func Node(t testing.TB) (node, root string) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	node, err = exec.LookPath("node")
	if err != nil {
		unavailable(t, "nodetest: node not found in PATH; install Node.js 20 or later, then run: cd %s && npm ci --prefix testdata", root)
	}
	pkg := filepath.Join(root, "testdata", "node_modules", "socket.io-client", "package.json")
	if _, err := os.Stat(pkg); err != nil {
		unavailable(t, "nodetest: socket.io-client is not installed (%s missing); run: cd %s && npm ci --prefix testdata", pkg, root)
	}
	return node, root
}

// Start runs the script testdata/interop/<script> with node. The process
// is killed, with its whole process group, when the test ends (or when
// opts.Timeout passes); the test then waits for it to be gone.
func Start(t testing.TB, script string, opts Options) *Process {
	t.Helper()
	node, root := Node(t)
	path := filepath.Join(root, "testdata", "interop", script)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	cmd := exec.CommandContext(ctx, node, append([]string{path}, opts.Args...)...)
	cmd.Dir = filepath.Join(root, "testdata")
	cmd.Env = append(os.Environ(), opts.Env...)
	setProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second

	p := &Process{t: t, script: script, cmd: cmd, cancel: cancel,
		exited: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("nodetest: %v", err)
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		cancel()
		t.Fatalf("nodetest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("nodetest: starting %s: %v", script, err)
	}
	go p.run(stdout)
	t.Cleanup(p.stop)
	return p
}

// run reads stdout until the process ends, then waits for it.
func (p *Process) run(stdout io.Reader) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64*1024), 64*1024*1024)
	for sc.Scan() {
		p.addLine(sc.Text())
	}
	// Drain whatever is left (a line too long for the scanner) so the
	// process never blocks writing.
	io.Copy(io.Discard, stdout)
	err := p.cmd.Wait()
	p.mu.Lock()
	p.exitErr = err
	p.notifyLocked()
	p.mu.Unlock()
	close(p.exited)
}

func (p *Process) addLine(text string) {
	l := Line{Raw: text}
	err := json.Unmarshal([]byte(text), &l.Fields)
	if err == nil && l.Fields == nil {
		err = errors.New("not an object")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.bad = append(p.bad, text)
	} else {
		l.Event, _ = l.Fields["event"].(string)
		p.lines = append(p.lines, l)
	}
	p.notifyLocked()
}

func (p *Process) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// stop closes stdin, kills the process group and waits until the process
// and its reader are gone.
func (p *Process) stop() {
	p.stdin.Close()
	p.cancel()
	<-p.exited
}

// Send writes v to the script's stdin as one JSON line.
func (p *Process) Send(v any) {
	p.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		p.t.Fatalf("nodetest: encoding a line for %s: %v", p.script, err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("nodetest: writing to %s: %v\n%s", p.script, err, p.report())
	}
}

// Lines returns the lines printed so far.
func (p *Process) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Stderr returns what the script wrote on stderr so far.
func (p *Process) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// WaitFor waits until cond, called with every line printed so far, returns
// true, and returns those lines. The test fails if timeout passes, if the
// process exits first, or if the script printed a line that is not a JSON
// object or a FatalEvent line. what describes the wait in the failure message. cond runs on the
// test's goroutine, so it may call t.Fatal.
func (p *Process) WaitFor(timeout time.Duration, what string, cond func(lines []Line) bool) []Line {
	p.t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		p.mu.Lock()
		lines := append([]Line(nil), p.lines...)
		bad := append([]string(nil), p.bad...)
		changed := p.changed
		exited, exitErr := p.isExited(), p.exitErr
		p.mu.Unlock()
		if len(bad) > 0 {
			p.t.Fatalf("nodetest: %s printed a line that is not a JSON object: %q\n%s", p.script, bad[0], p.report())
		}
		for _, l := range lines {
			if l.Event == FatalEvent {
				p.t.Fatalf("nodetest: %s failed: %s\n%s", p.script, l.Text("error"), p.report())
			}
		}
		if cond(lines) {
			return lines
		}
		if exited {
			p.t.Fatalf("nodetest: %s exited (%v) while waiting for %s\n%s", p.script, exitErr, what, p.report())
		}
		select {
		case <-changed:
		case <-timer.C:
			p.t.Fatalf("nodetest: timed out after %v waiting for %s from %s\n%s", timeout, what, p.script, p.report())
		}
	}
}

func (p *Process) isExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// WaitLine waits for the first line for which match returns true.
func (p *Process) WaitLine(timeout time.Duration, what string, match func(Line) bool) Line {
	p.t.Helper()
	var found Line
	p.WaitFor(timeout, what, func(lines []Line) bool {
		for _, l := range lines {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

// WaitEvent waits for the first line whose "event" is event and whose other
// keys include every key of fields with an equal value (compared after a
// JSON round trip, so fields may hold Go ints and strings).
func (p *Process) WaitEvent(timeout time.Duration, event string, fields map[string]any) Line {
	p.t.Helper()
	want := normalize(p.t, fields)
	what := fmt.Sprintf("event %q with %v", event, fields)
	return p.WaitLine(timeout, what, func(l Line) bool { return l.Event == event && Contains(l, want) })
}

// Contains reports whether every key of fields is in l with the same value.
// fields must hold JSON-decoded values (float64, string, []any, ...).
func Contains(l Line, fields map[string]any) bool {
	for k, v := range fields {
		got, ok := l.Fields[k]
		if !ok || !jsonEqual(got, v) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

func normalize(t testing.TB, v map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("nodetest: %v", err)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// Exit waits until the script exits by itself and returns its error, or
// fails the test after timeout.
func (p *Process) Exit(timeout time.Duration) error {
	p.t.Helper()
	select {
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.exitErr
	case <-time.After(timeout):
		p.t.Fatalf("nodetest: %s did not exit within %v\n%s", p.script, timeout, p.report())
		return nil
	}
}

// report describes the script's output for a failure message: the last
// stdout lines and stderr.
func (p *Process) report() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	const last = 30
	lines := p.lines
	if len(lines) > last {
		fmt.Fprintf(&b, "stdout (last %d of %d lines):\n", last, len(lines))
		lines = lines[len(lines)-last:]
	} else {
		fmt.Fprintf(&b, "stdout (%d lines):\n", len(lines))
	}
	for _, l := range lines {
		raw := l.Raw
		if len(raw) > 500 {
			raw = raw[:500] + "…"
		}
		b.WriteString("  " + raw + "\n")
	}
	for _, l := range p.bad {
		b.WriteString("  (not JSON) " + l + "\n")
	}
	stderr := p.stderr.String()
	if len(stderr) > 8000 {
		stderr = "…" + stderr[len(stderr)-8000:]
	}
	fmt.Fprintf(&b, "stderr:\n%s", stderr)
	return b.String()
}

// lockedWriter serializes writes with the Process's mutex.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

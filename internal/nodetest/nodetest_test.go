package nodetest

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

func TestScript(t *testing.T) {
	p := Start(t, "nodetest_selftest.js", Options{Args: []string{"a", "b"}, Env: []string{"NODETEST_SELFTEST=on"}})
	hello := p.WaitEvent(5*time.Second, "hello", map[string]any{"env": "on"})
	if got := hello.Raw; got != `{"event":"hello","argv":["a","b"],"env":"on"}` {
		t.Errorf("hello line: got %s", got)
	}
	p.Send(map[string]any{"op": "echo", "value": map[string]any{"n": 1}})
	echo := p.WaitEvent(5*time.Second, "echo", map[string]any{"value": map[string]any{"n": 1}})
	var decoded struct{ Value struct{ N int } }
	if err := echo.Decode(&decoded); err != nil || decoded.Value.N != 1 {
		t.Errorf("Decode: got %+v, %v", decoded, err)
	}
	if n := len(p.Lines()); n != 2 {
		t.Errorf("got %d lines, want 2", n)
	}
	p.Send(map[string]any{"op": "exit", "code": 3})
	var exit *exec.ExitError
	if err := p.Exit(5 * time.Second); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("Exit: got %v, want exit status 3", err)
	}
}

func TestKilledAtCleanup(t *testing.T) {
	var p *Process
	t.Run("run", func(t *testing.T) {
		p = Start(t, "nodetest_selftest.js", Options{})
		p.Send(map[string]any{"op": "hang"})
		p.WaitEvent(5*time.Second, "hello", nil)
	})
	if p == nil {
		t.Skip("the script did not start (the subtest skipped)")
	}
	// The subtest's cleanup has run: the process must be gone.
	select {
	case <-p.exited:
	default:
		t.Fatal("the script still runs after its test ended")
	}
	if p.cmd.ProcessState == nil || p.cmd.ProcessState.Success() {
		t.Errorf("the script was not killed: %v", p.cmd.ProcessState)
	}
}

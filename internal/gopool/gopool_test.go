package gopool

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunsEveryTask(t *testing.T) {
	p := New(time.Second)
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 1000 {
		wg.Add(1)
		p.Go(func() { n.Add(1); wg.Done() })
	}
	wg.Wait()
	if n.Load() != 1000 {
		t.Fatalf("ran %d tasks", n.Load())
	}
	if !p.Close(time.Second) {
		t.Fatal("goroutines left after Close")
	}
}

func TestReusesGoroutines(t *testing.T) {
	p := New(time.Second)
	defer p.Close(time.Second)
	done := make(chan struct{})
	for range 100 {
		p.Go(func() { done <- struct{}{} })
		<-done
		time.Sleep(time.Millisecond) // let it park
	}
	p.mu.Lock()
	running := p.running
	p.mu.Unlock()
	if running != 1 {
		t.Fatalf("%d goroutines for sequential tasks, want 1", running)
	}
}

func TestIdleGoroutinesExit(t *testing.T) {
	p := New(20 * time.Millisecond)
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		p.Go(func() { time.Sleep(5 * time.Millisecond); wg.Done() })
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still alive", running)
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.Go(func() {}) // a new one starts when none is idle
	if !p.Close(time.Second) {
		t.Fatal("goroutines left after Close")
	}
}

func TestCloseWaitsForBusy(t *testing.T) {
	p := New(time.Second)
	release := make(chan struct{})
	p.Go(func() { <-release })
	if p.Close(10 * time.Millisecond) {
		t.Fatal("Close returned true with a task running")
	}
	close(release)
	if !p.Close(time.Second) {
		t.Fatal("the busy goroutine did not exit")
	}
}

func TestGoAfterClose(t *testing.T) {
	p := New(time.Minute)
	p.Go(func() {})
	if !p.Close(time.Second) {
		t.Fatal("Close timed out")
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		p.Go(wg.Done) // runs, and does not disturb the closed pool
	}
	wg.Wait()
	if !p.Close(time.Second) {
		t.Fatal("second Close timed out")
	}
}

func TestOnlyLongIdleGoroutinesExit(t *testing.T) {
	const idle = 100 * time.Millisecond
	p := New(idle)
	defer p.Close(time.Second)
	// Two goroutines go idle; one of them is then kept busy with a task
	// every few milliseconds, so only the other is idle for long.
	release := make(chan struct{})
	started := make(chan struct{})
	p.Go(func() { started <- struct{}{}; <-release })
	p.Go(func() { started <- struct{}{}; <-release })
	<-started
	<-started
	close(release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		done := make(chan struct{})
		p.Go(func() { close(done) })
		<-done
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if running == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines alive after %v, want the busy one alone", running, 5*time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkHandOff is one task handed to an idle goroutine and waited for:
// what dispatching an event or starting a write costs in the pool.
func BenchmarkHandOff(b *testing.B) {
	p := New(time.Minute)
	defer p.Close(time.Second)
	done := make(chan struct{})
	task := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		p.Go(task)
		<-done
	}
}

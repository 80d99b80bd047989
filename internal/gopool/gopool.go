// Package gopool runs functions on reused goroutines.
//
// Starting a goroutine per task costs an allocation and, for tasks that
// need more than the initial stack (decoding JSON through reflection
// does), a stack copy each time. A Pool keeps goroutines that finished a
// task for a while and hands them the next ones; goroutines idle for
// longer than the pool's idle time exit, so an idle server holds none.
// A Pool never limits concurrency: a task with no idle goroutine gets a new
// one.
//
// An idle goroutine waits on its channel alone: one timer for the whole
// pool dismisses those idle too long, so that handing a task over costs a
// channel send, not a timer reset and a select per task.
package gopool

import (
	"slices"
	"sync"
	"time"
)

// Pool runs tasks on reused goroutines. The zero value is not usable; use
// New.
type Pool struct {
	idleTime time.Duration

	mu      sync.Mutex
	idle    []*worker   // goroutines waiting for a task, longest idle first
	running int         // goroutines alive, busy or idle
	reaper  *time.Timer // dismisses idle goroutines; armed while reaping
	reaping bool
	closed  bool
	done    chan struct{} // closed when closed and no goroutine is left
}

// worker is one goroutine of the pool.
type worker struct {
	tasks chan func() // closed to dismiss it
	since time.Time   // when it last became idle
}

// New returns a pool whose goroutines exit after idleTime without a task.
func New(idleTime time.Duration) *Pool {
	return &Pool{idleTime: idleTime, done: make(chan struct{})}
}

// Go runs task on an idle goroutine of the pool, or a new one. After
// Close, the task still runs, on a goroutine of its own that the pool does
// not keep.
func (p *Pool) Go(task func()) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		go task()
		return
	}
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1] // the most recent: its stack is grown and warm
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.tasks <- task
		return
	}
	p.running++
	p.mu.Unlock()
	go p.work(&worker{tasks: make(chan func())}, task)
}

func (p *Pool) work(w *worker, task func()) {
	for {
		task()
		task = nil
		p.mu.Lock()
		if p.closed {
			p.exitLocked()
			p.mu.Unlock()
			return
		}
		w.since = time.Now()
		p.idle = append(p.idle, w)
		if !p.reaping {
			p.reaping = true
			p.armLocked(p.idleTime)
		}
		p.mu.Unlock()
		var ok bool
		if task, ok = <-w.tasks; !ok {
			return // dismissed; whoever closed the channel accounted for it
		}
	}
}

// armLocked schedules the next reap in d.
func (p *Pool) armLocked(d time.Duration) {
	if p.reaper == nil {
		p.reaper = time.AfterFunc(d, p.reap)
		return
	}
	p.reaper.Reset(d)
}

// reap dismisses the goroutines idle for the pool's idle time, and
// schedules itself for the next one while some are left.
func (p *Pool) reap() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	now := time.Now()
	n := 0
	for n < len(p.idle) && now.Sub(p.idle[n].since) >= p.idleTime {
		close(p.idle[n].tasks)
		n++
	}
	p.running -= n
	p.idle = slices.Delete(p.idle, 0, n)
	if len(p.idle) == 0 {
		p.reaping = false
		return
	}
	p.armLocked(p.idleTime - now.Sub(p.idle[0].since))
}

// exitLocked accounts for a goroutine leaving.
func (p *Pool) exitLocked() {
	p.running--
	if p.closed && p.running == 0 {
		close(p.done)
	}
}

// Close makes idle goroutines exit now and busy ones once their task
// returns, and waits for them until timeout; it reports whether they all
// exited.
func (p *Pool) Close(timeout time.Duration) bool {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		if p.reaper != nil {
			p.reaper.Stop()
		}
		for _, w := range p.idle {
			close(w.tasks)
		}
		p.running -= len(p.idle)
		p.idle = nil
		if p.running == 0 {
			close(p.done)
		}
	}
	p.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		return false
	}
}

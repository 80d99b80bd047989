// Package gopool runs functions on reused goroutines.
//
// Starting a goroutine per task costs an allocation and, for tasks that
// need more than the initial stack (decoding JSON through reflection
// does), a stack copy each time. A Pool keeps goroutines that finished a
// task for a while and hands them the next ones; goroutines idle for
// longer than the pool's idle time exit, so an idle server holds none.
// A Pool never limits concurrency: a task with no idle goroutine gets a new
// one.
package gopool

import (
	"sync"
	"time"
)

// Pool runs tasks on reused goroutines. The zero value is not usable; use
// New.
type Pool struct {
	idleTime time.Duration

	mu      sync.Mutex
	idle    []chan func() // goroutines waiting for a task, most recent last
	running int           // goroutines alive, busy or idle
	closed  bool
	done    chan struct{} // closed when closed and no goroutine is left
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
		ch := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		ch <- task
		return
	}
	p.running++
	p.mu.Unlock()
	go p.work(task)
}

func (p *Pool) work(task func()) {
	ch := make(chan func())
	timer := time.NewTimer(p.idleTime)
	defer timer.Stop()
	for {
		task()
		task = nil
		p.mu.Lock()
		if p.closed {
			p.exitLocked()
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, ch)
		p.mu.Unlock()
		timer.Reset(p.idleTime)
		var ok bool
		select {
		case task, ok = <-ch:
			if !ok {
				return // closed while idle; Close accounted for it
			}
			continue
		case <-timer.C:
		}
		// Idle too long: leave, unless a task is being handed over right
		// now.
		p.mu.Lock()
		if i := index(p.idle, ch); i >= 0 {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.exitLocked()
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if task, ok = <-ch; !ok {
			return
		}
	}
}

// exitLocked accounts for a goroutine leaving.
func (p *Pool) exitLocked() {
	p.running--
	if p.closed && p.running == 0 {
		close(p.done)
	}
}

func index(chs []chan func(), ch chan func()) int {
	for i, c := range chs {
		if c == ch {
			return i
		}
	}
	return -1
}

// Close makes idle goroutines exit now and busy ones once their task
// returns, and waits for them until timeout; it reports whether they all
// exited.
func (p *Pool) Close(timeout time.Duration) bool {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		for _, ch := range p.idle {
			close(ch)
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

// Package serial runs functions one at a time, in the order they were
// queued, on a goroutine that exists only while there is work.
package serial

import "sync"

// Queue is a FIFO of functions drained by at most one goroutine at a time.
// The zero value is ready to use and drains with a plain go statement.
type Queue struct {
	// Start, when set, runs drain on a goroutine of the caller's choosing
	// (a pool, with accounting); drain returns once the queue is empty.
	Start func(drain func())
	// Done, when set, is called by each drain as it returns.
	Done func()

	mu      sync.Mutex
	jobs    []func() // jobs[head:] are waiting
	head    int
	running bool
	drain   func() // q.run, kept to start drains without allocating
}

// keptJobs is the largest backing array an emptied queue keeps for its
// next jobs, so that a queue used one job at a time does not allocate.
const keptJobs = 8

// Push queues job, starting a drain if none runs.
func (q *Queue) Push(job func()) {
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	if q.running {
		q.mu.Unlock()
		return
	}
	q.running = true
	if q.drain == nil {
		q.drain = q.run
	}
	q.mu.Unlock()
	if q.Start != nil {
		q.Start(q.drain)
	} else {
		go q.drain()
	}
}

func (q *Queue) run() {
	for {
		q.mu.Lock()
		if q.head == len(q.jobs) {
			q.running = false
			q.head = 0
			if cap(q.jobs) > keptJobs {
				q.jobs = nil // a burst's backlog is not kept
			} else {
				q.jobs = q.jobs[:0]
			}
			q.mu.Unlock()
			if q.Done != nil {
				q.Done()
			}
			return
		}
		job := q.jobs[q.head]
		q.jobs[q.head] = nil
		q.head++
		q.mu.Unlock()
		job()
	}
}

package serial

import (
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrderAndOneAtATime(t *testing.T) {
	var q Queue
	var mu sync.Mutex
	var got []int
	running := 0
	var wg sync.WaitGroup
	for i := range 1000 {
		wg.Add(1)
		q.Push(func() {
			defer wg.Done()
			mu.Lock()
			running++
			if running != 1 {
				t.Errorf("%d jobs running at once", running)
			}
			got = append(got, i)
			running--
			mu.Unlock()
		})
	}
	wg.Wait()
	for i, v := range got {
		if v != i {
			t.Fatalf("job %d ran as %d", i, v)
		}
	}
}

func TestStartHook(t *testing.T) {
	var drains sync.WaitGroup
	q := Queue{Start: func(drain func()) {
		drains.Add(1)
		go func() { defer drains.Done(); drain() }()
	}}
	done := make(chan struct{})
	q.Push(func() { close(done) })
	<-done
	drains.Wait()
	q.Push(func() {}) // a new drain starts after the last one ended
	drains.Wait()
}

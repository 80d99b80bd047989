package rally_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

// TestHandlerWaitsForItsOwnClient has an event handler ask its own client
// and wait for the answer: the client's connection must be read while the
// handler waits, on every transport, for events sent one after another and
// at once.
func TestHandlerWaitsForItsOwnClient(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			hub.On("ask me", func(s *rally.Socket, q string) (string, error) {
				ctx, cancel := context.WithTimeout(s.Context(), 5*time.Second)
				defer cancel()
				r, err := s.EmitWithAck(ctx, "question", q)
				if err != nil {
					return "", err
				}
				var a string
				err = r.Decode(&a)
				return "answer: " + a, err
			})
			srv := sockettest.NewServer(t, hub)
			c := srv.Socket(t, "/", mode.opts)
			c.On("question", func(q string) string { return q + "!" })
			srv.Connect(t, c)

			ask := func(i int) error {
				r, err := c.EmitWithAck(ctx5s(t), "ask me", fmt.Sprint(i))
				var got string
				if err == nil {
					err = r.Decode(&got)
				}
				if want := fmt.Sprintf("answer: %d!", i); err == nil && got != want {
					err = fmt.Errorf("got %q, want %q", got, want)
				}
				return err
			}
			for i := range 10 {
				if err := ask(i); err != nil {
					t.Fatalf("in a row, %d: %v", i, err)
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, 10)
			for i := range 10 {
				wg.Go(func() { errs <- ask(100 + i) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("at once: %v", err)
				}
			}
		})
	}
}

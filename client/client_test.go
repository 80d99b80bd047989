package client_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var modes = []struct {
	name       string
	transports []string
	final      string
}{
	{"default", nil, client.TransportWebSocket},
	{"websocket", []string{client.TransportWebSocket}, client.TransportWebSocket},
	{"polling", []string{client.TransportPolling}, client.TransportPolling},
}

func TestRoundTrip(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			hub := rally.NewHub(nil)
			got := make(chan []byte, 1)
			hub.OnConnect(func(s *rally.Socket) {
				s.Emit("greetings", "Hey!", map[string]string{"ms": "jane"}, []byte{5, 6, 7})
			})
			hub.On("salutations", func(s *rally.Socket, text string, who map[string]string, data []byte) {
				if text == "Hello!" && who["mr"] == "john" {
					got <- data
				}
			})
			hub.On("sum", func(s *rally.Socket, a, b int) (int, error) {
				if a < 0 {
					return 0, errors.New("negative")
				}
				return a + b, nil
			})
			srv := sockettest.NewServer(t, hub)
			c := srv.Socket(t, "/", &client.Options{Transports: mode.transports})
			events := sockettest.Record(c)
			srv.Connect(t, c)

			var text string
			var who map[string]string
			var data []byte
			events.Expect(t, "greetings", &text, &who, &data)
			if text != "Hey!" || who["ms"] != "jane" || !bytes.Equal(data, []byte{5, 6, 7}) {
				t.Fatalf("greetings: %q %v %v", text, who, data)
			}
			if err := c.Emit("salutations", "Hello!", map[string]string{"mr": "john"}, []byte{1, 2, 3, 4}); err != nil {
				t.Fatal(err)
			}
			select {
			case d := <-got:
				if !bytes.Equal(d, []byte{1, 2, 3, 4}) {
					t.Fatalf("server got %v", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("server got no salutations")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r, err := c.EmitWithAck(ctx, "sum", 2, 3)
			var n int
			if err != nil || r.Decode(&n) != nil || n != 5 {
				t.Fatalf("sum: %v %v %d", r, err, n)
			}
			_, err = c.EmitWithAck(ctx, "sum", -1, 3)
			var ae *rally.AckError
			if !errors.As(err, &ae) || ae.Message != "negative" {
				t.Fatalf("error ack: %v", err)
			}
			if mode.final == client.TransportWebSocket {
				deadline := time.Now().Add(5 * time.Second)
				for c.Transport() != mode.final && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			}
			if c.Transport() != mode.final {
				t.Fatalf("transport %q, want %q", c.Transport(), mode.final)
			}
		})
	}
}

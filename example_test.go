package rally_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
)

// A Hub is an http.Handler: mount it where Socket.IO clients connect.
func ExampleNewHub() {
	hub := rally.NewHub(nil)
	hub.OnConnect(func(s *rally.Socket) {
		s.Emit("greetings", "Hey!", map[string]string{"ms": "jane"}, []byte{1, 2, 3})
	})
	hub.On("salutations", func(s *rally.Socket, text string, who map[string]string, data []byte) {
		fmt.Println("salutations:", text, who["mr"], data)
	})

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", hub)
	srv := httptest.NewServer(mux) // http.ListenAndServe(":3000", mux) in a real program
	defer srv.Close()
	defer hub.Close()

	// The Go client; the official JavaScript client works the same way.
	c := client.New(srv.URL, nil)
	got := make(chan struct{})
	c.On("greetings", func(text string, who map[string]string, data []byte) {
		fmt.Println("greetings:", text, who["ms"], data)
		close(got)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		panic(err)
	}
	defer c.Close()
	<-got
	c.EmitWithAck(ctx, "salutations", "Hello!", map[string]string{"mr": "john"}, []byte{4, 5})
	// Output:
	// greetings: Hey! jane [1 2 3]
	// salutations: Hello! john [4 5]
}

// Handler results are the acknowledgement; a last error result becomes an
// error ack.
func ExampleNamespace_On() {
	hub := rally.NewHub(nil)
	hub.On("divide", func(s *rally.Socket, a, b float64) (float64, error) {
		if b == 0 {
			return 0, errors.New("division by zero")
		}
		return a / b, nil
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()

	reply, err := c.EmitWithAck(ctx, "divide", 1, 4)
	var q float64
	reply.Decode(&q)
	fmt.Println(q, err)
	_, err = c.EmitWithAck(ctx, "divide", 1, 0)
	fmt.Println(err)
	// Output:
	// 0.25 <nil>
	// division by zero
}

// Rooms group sockets; a Broadcast selects them.
func ExampleBroadcast() {
	hub := rally.NewHub(nil)
	hub.On("join", func(s *rally.Socket, room string) { s.Join(room) })
	hub.On("say", func(s *rally.Socket, room, text string) {
		s.To(room).Emit("said", text) // everyone in the room but the sender
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	heard := make(chan string, 1)
	var clients []*client.Socket
	for _, name := range []string{"ann", "bob"} {
		c := client.New(srv.URL, nil)
		c.On("said", func(text string) { heard <- name + " heard " + text })
		if err := c.Connect(ctx); err != nil {
			panic(err)
		}
		defer c.Close()
		c.EmitWithAck(ctx, "join", "lobby")
		clients = append(clients, c)
	}
	clients[0].Emit("say", "lobby", "hi")
	fmt.Println(<-heard)
	// Output: bob heard hi
}

// Connect middleware sees the client's auth payload and can refuse.
func ExampleHub_Use() {
	hub := rally.NewHub(nil)
	hub.Use(func(s *rally.Socket) error {
		var auth struct {
			Token string `json:"token"`
		}
		if s.Handshake().DecodeAuth(&auth) != nil || auth.Token != "s3cret" {
			return &rally.ConnectError{Message: "not authorized", Data: map[string]string{"hint": "send a token"}}
		}
		return nil
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := client.Dial(ctx, srv.URL, &client.Options{Auth: map[string]string{"token": "guess"}})
	var refused *rally.ConnectError
	if errors.As(err, &refused) {
		fmt.Printf("refused: %s %s\n", refused.Message, refused.Data)
	}
	c, err := client.Dial(ctx, srv.URL, &client.Options{Auth: map[string]string{"token": "s3cret"}})
	fmt.Println("connected:", err == nil)
	c.Close()
	// Output:
	// refused: not authorized {"hint":"send a token"}
	// connected: true
}

// The server asks a client and waits for its answer.
func ExampleSocket_EmitWithAck() {
	hub := rally.NewHub(nil)
	answers := make(chan string)
	hub.OnConnect(func(s *rally.Socket) {
		ctx, cancel := context.WithTimeout(s.Context(), 5*time.Second)
		defer cancel()
		reply, err := s.EmitWithAck(ctx, "name?")
		var name string
		if err == nil {
			err = reply.Decode(&name)
		}
		answers <- fmt.Sprint(name, " ", err)
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	c := client.New(srv.URL, nil)
	c.On("name?", func() string { return "gopher" })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(<-answers)
	// Output: gopher <nil>
}

// OnAny returns the func that removes the listener, as Node's
// socket.offAny(listener) does: here the listener removes itself after the
// first event, and Off removes an event's handler.
func ExampleSocket_OnAny() {
	hub := rally.NewHub(nil)
	hub.OnConnect(func(s *rally.Socket) {
		var remove func()
		remove = s.OnAny(func(s *rally.Socket, e *rally.Event) {
			fmt.Println("first event:", e.Name)
			remove()
		})
		s.On("bye", func(s *rally.Socket) string { s.Off("bye"); return "bye" })
	})
	hub.OnUnhandled(func(s *rally.Socket, e *rally.Event, ack rally.Ack) { ack.Send("no handler of " + e.Name) })
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL, nil)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for range 2 {
		reply, err := c.EmitWithAck(ctx, "bye")
		var answer string
		if err == nil {
			err = reply.Decode(&answer)
		}
		fmt.Println(answer, err)
	}
	// Output:
	// first event: bye
	// bye <nil>
	// no handler of bye <nil>
}

// HTTP middleware wraps the Hub like any handler.
func ExampleLogRequests() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	hub := rally.NewHub(nil)
	defer hub.Close()
	http.Handle("/socket.io/", rally.LogRequests(logger)(hub))
}

// With connection state recovery, a client whose connection was lost comes
// back with its socket and receives what was sent while it was away.
func ExampleRecovery() {
	hub := rally.NewHub(&rally.Options{ConnectionStateRecovery: &rally.Recovery{}})
	recovered := make(chan bool, 2)
	hub.OnConnect(func(s *rally.Socket) { recovered <- s.Recovered() })
	hub.On("drop me", func(s *rally.Socket) { s.CloseConnection() }) // as a network failure would
	hub.OnDisconnect(func(s *rally.Socket, reason string) {
		hub.Emit("news", "sent while you were away")
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	c := client.New(srv.URL, &client.Options{ReconnectionDelay: 50 * time.Millisecond})
	news := make(chan string, 2)
	c.On("news", func(text string) { news <- text }) // the offset that follows is not asked for
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Connect(ctx); err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println("recovered:", <-recovered)
	hub.Emit("news", "hello") // the client keeps the offset of the last event it received
	fmt.Println(<-news)
	c.Emit("drop me")
	fmt.Println(<-news)
	fmt.Println("recovered:", <-recovered, c.Recovered())
	// Output:
	// recovered: false
	// hello
	// sent while you were away
	// recovered: true true
}

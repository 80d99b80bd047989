package ws

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestTLS serves a connection over TLS, which the poller cannot watch (the
// bytes on the socket are not the messages): a goroutine reads it instead,
// and messages flow both ways.
func TestTLS(t *testing.T) {
	conns := make(chan *Conn, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := Accept(w, r, AcceptOptions{}); err == nil {
			conns <- c
		}
	}))
	defer srv.Close()
	ctx := testContext(t)
	conn, _, err := websocket.Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), &websocket.DialOptions{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	c := <-conns
	defer c.CloseNow()
	s := serve(c, echo(c))
	for i := range 100 {
		want := fmt.Sprintf("message %d", i)
		if err := conn.Write(ctx, websocket.MessageText, []byte(want)); err != nil {
			t.Fatal(err)
		}
		if _, got, err := conn.Read(ctx); err != nil || string(got) != want {
			t.Fatalf("echo %d: %q, %v", i, got, err)
		}
	}
	conn.Close(websocket.StatusNormalClosure, "done")
	select {
	case err := <-s.closeErr:
		var ce *CloseError
		if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Fatalf("onClose got %v, want the client's close 1000", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("onClose not called")
	}
}

// Command bare is the transport-limit peer of the benchmark harness: a
// github.com/coder/websocket server that speaks only as much Engine.IO and
// Socket.IO as the load generator needs (websocket-only handshake, CONNECT
// to "/", the echo ack and the blast trigger of bench/README.md). It never
// pings. A broadcast encodes each tick once and writes that one frame to
// every connection in turn, from the goroutine that got the trigger: no
// queue, no per-connection work beyond the websocket write itself.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally/bench/internal/serverkit"
)

type server struct {
	mu    sync.RWMutex
	conns map[*websocket.Conn]struct{}
	n     atomic.Int64
	ids   atomic.Uint64
}

var openPacket = []byte(`0{"sid":"%","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`)

func (srv *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("transport") != "websocket" || r.URL.Query().Get("EIO") != "4" {
		http.Error(w, `{"code":0,"message":"Transport unknown"}`, http.StatusBadRequest)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ctx := context.Background()
	id := strconv.FormatUint(srv.ids.Add(1), 36)
	open := bytes.Replace(openPacket, []byte("%"), []byte("e"+id), 1)
	if c.Write(ctx, websocket.MessageText, open) != nil {
		c.CloseNow()
		return
	}
	joined := false
	defer func() {
		if joined {
			srv.mu.Lock()
			delete(srv.conns, c)
			srv.mu.Unlock()
			srv.n.Add(-1)
		}
		c.CloseNow()
	}()
	var out []byte
	for {
		typ, m, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ != websocket.MessageText || len(m) == 0 {
			continue
		}
		switch {
		case bytes.Equal(m, []byte("40")):
			if joined {
				return
			}
			out = append(append(out[:0], `40{"sid":"s`...), id...)
			out = append(out, `"}`...)
			if c.Write(ctx, websocket.MessageText, out) != nil {
				return
			}
			joined = true
			srv.mu.Lock()
			srv.conns[c] = struct{}{}
			srv.mu.Unlock()
			srv.n.Add(1)
		case bytes.HasPrefix(m, []byte("42")):
			if !joined {
				return
			}
			srv.event(ctx, c, m[2:], &out)
		case m[0] == '1' || bytes.Equal(m, []byte("41")):
			return
		}
		// Pongs and anything else are ignored.
	}
}

// event handles the rest of a "42..." message: an optional ack id and the
// array ["name", args...].
func (srv *server) event(ctx context.Context, c *websocket.Conn, m []byte, out *[]byte) {
	i := 0
	for i < len(m) && m[i] >= '0' && m[i] <= '9' {
		i++
	}
	id, arr := m[:i], m[i:]
	switch {
	case bytes.HasPrefix(arr, []byte(`["echo",`)) && len(id) > 0:
		// The ack is the arguments after the event name, as sent.
		b := append(append((*out)[:0], '4', '3'), id...)
		b = append(b, '[')
		b = append(b, arr[len(`["echo",`):]...)
		*out = b
		c.Write(ctx, websocket.MessageText, b)
	case bytes.HasPrefix(arr, []byte(`["blast",`)):
		var req serverkit.Blast
		if json.Unmarshal(arr[len(`["blast",`):len(arr)-1], &req) != nil {
			return
		}
		srv.blast(ctx, req)
	}
}

// blast broadcasts req.N ticks: each is encoded once, and that one frame is
// written to every connection.
func (srv *server) blast(ctx context.Context, req serverkit.Blast) {
	pad := serverkit.Pad(req.Pad)
	var frame []byte
	for i := range req.N {
		frame = append(frame[:0], `42["tick",{"t":`...)
		frame = strconv.AppendInt(frame, serverkit.NowMicros(), 10)
		frame = append(frame, `,"i":`...)
		frame = strconv.AppendInt(frame, int64(req.From+i), 10)
		frame = append(frame, `,"p":"`...)
		frame = append(frame, pad...)
		frame = append(frame, `"}]`...)
		srv.mu.RLock()
		for c := range srv.conns {
			c.Write(ctx, websocket.MessageText, frame)
		}
		srv.mu.RUnlock()
	}
}

func main() {
	srv := &server{conns: make(map[*websocket.Conn]struct{})}
	serverkit.Run(serverkit.Server{
		Name:    "bare-coder-websocket",
		Module:  "github.com/coder/websocket",
		Handler: srv,
		Clients: srv.n.Load,
	})
}

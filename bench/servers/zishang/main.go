// Command zishang is the github.com/zishang520/socket.io peer of the
// benchmark harness, with the contract's handlers (see bench/README.md).
package main

import (
	"sync/atomic"

	"github.com/rallyhq/rally/bench/internal/serverkit"
	"github.com/zishang520/socket.io/servers/socket/v3"
)

func main() {
	var clients atomic.Int64
	opts := socket.DefaultServerOptions()
	opts.SetServeClient(false)
	io := socket.NewServer(nil, opts)
	io.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		clients.Add(1)
		s.On("disconnect", func(...any) { clients.Add(-1) })
		s.On("echo", func(args ...any) {
			if len(args) == 0 {
				return
			}
			if ack, ok := args[len(args)-1].(socket.Ack); ok {
				ack(args[:len(args)-1], nil)
			}
		})
		s.On("blast", func(args ...any) {
			if len(args) == 0 {
				return
			}
			m, _ := args[0].(map[string]any)
			n, _ := m["n"].(float64)
			padLen, _ := m["pad"].(float64)
			from, _ := m["from"].(float64)
			pad := serverkit.Pad(int(padLen))
			for i := range int(n) {
				io.Emit("tick", map[string]any{"t": serverkit.NowMicros(), "i": int(from) + i, "p": pad})
			}
		})
	})
	serverkit.Run(serverkit.Server{
		Name:    "zishang520",
		Module:  "github.com/zishang520/socket.io/servers/socket/v3",
		Handler: io.ServeHandler(opts),
		Clients: clients.Load,
	})
}

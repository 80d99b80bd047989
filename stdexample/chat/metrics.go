package chat

import (
	"net/http"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/metrics"
)

// WithMetrics serves hub's Prometheus metrics at GET /metrics (rally's,
// with the Go runtime's and the process's) and everything else with
// next. Here they share the chat's address, for the example's sake; a
// server on the internet serves them on an address of its own, or
// behind authentication, since they tell who is connected and how much.
func WithMetrics(next http.Handler, hub *rally.Hub) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.New(hub, nil).Handler())
	mux.Handle("/", next)
	return mux
}

package metrics_test

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/metrics"
)

// A hub's metrics on the application's own registry, served at /metrics.
func ExampleNew() {
	hub := rally.NewHub(nil)
	defer hub.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(hub, &metrics.Options{ConstLabels: prometheus.Labels{"server": "eu-1"}}))
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", hub)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	fams, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		if f.GetName() == "rally_sockets" {
			for _, m := range f.Metric {
				fmt.Print(f.GetName())
				for _, l := range m.GetLabel() {
					fmt.Printf(" %s=%s", l.GetName(), l.GetValue())
				}
				fmt.Println(":", m.GetGauge().GetValue())
			}
		}
	}
	// Output:
	// rally_sockets namespace=/ server=eu-1: 0
}

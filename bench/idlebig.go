package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/rallyhq/rally/bench/internal/proc"
)

// bigIdleClients is the number of connections of idle-100k (-big-idle),
// for machines whose open-file limit cannot reach 100,000.
var bigIdleClients = 100000

// bigIdleSources is how many loopback source addresses idle-100k connects
// from: 12,500 connections each, well within one address's ephemeral
// ports (net.ipv4.ip_local_port_range, 28,232 by default).
const bigIdleSources = 8

// bigIdleScenario is idle-100k: bigIdleClients idle connections, parked
// by the load generator on one epoll loop (a few bytes each) and spread
// over bigIdleSources source addresses, held for longer than a ping
// interval.
func bigIdleScenario() scenario {
	n, sources, hold := bigIdleClients, bigIdleSources, 30*time.Second
	title := fmt.Sprintf("%s idle connections from %d source addresses, parked by the load generator, held %s",
		fmtCount(float64(n)), sources, hold)
	return scenario{Key: "idle-100k", Title: title, Kind: "idle",
		Args: []string{"-clients", strconv.Itoa(n), "-park", "-sources", strconv.Itoa(sources),
			"-hold", hold.String(), "-timeout", "280s"},
		profile: "heap",
		// Each side holds a descriptor per connection, the loader up to
		// two while it hands one over, plus its dialers'.
		Files:   uint64(n + 500),
		Timeout: 300 * time.Second,
	}
}

// checkFiles makes sure the processes about to start may open the files
// sc needs, raising the limit (which they inherit) if it must and can.
// When it cannot, the run is n/a, with the error as the reason: the
// machine, not the server, is short.
func checkFiles(sc scenario) error {
	if sc.Files == 0 {
		return nil
	}
	if _, err := proc.EnsureFileLimit(sc.Files); err != nil {
		return fmt.Errorf("%s: %w; -big-idle sets fewer connections", sc.Key, err)
	}
	return nil
}

// idleMetrics are the idle rows about connecting and holding, after the
// memory ones; the websocket idle-10k has only the connect time.
func idleMetrics() []metric {
	opt := func(field string, format func(float64) string) func(map[string]any) (string, bool) {
		return func(res map[string]any) (string, bool) {
			v, ok := res[field].(float64)
			if !ok {
				return "", false
			}
			return format(v), true
		}
	}
	return []metric{
		{Field: "connect_seconds", Name: "time to connect them all", Better: "lower", Format: fmtSeconds},
		{Field: "connect_p50_us", Name: "p50 connect (websocket + Engine.IO + CONNECT)", Better: "lower", Format: fmtMicros,
			Show: opt("connect_p50_us", fmtMicros)},
		{Field: "connect_p99_us", Name: "p99 connect", Better: "lower", Format: fmtMicros,
			Show: opt("connect_p99_us", fmtMicros)},
		{Field: "pings_answered", Name: "Engine.IO pings answered while held", Show: opt("pings_answered", fmtCount)},
		{Field: "loadgen_per_conn_bytes", Name: "load generator RSS growth per connection", Show: opt("loadgen_per_conn_bytes", fmtBytes)},
	}
}

func fmtSeconds(v float64) string { return fmt.Sprintf("%.1f s", v) }

package main

import (
	"fmt"
	"slices"
	"strings"
)

// crossMetrics are the rows of the cross-server table.
func crossMetrics() []metric {
	lat := func(field, name string) metric {
		return metric{Field: field, Name: name, Better: "lower", Format: fmtMicros}
	}
	rss := func(stats, name string) metric {
		return metric{Name: name, Show: func(res map[string]any) (string, bool) {
			st, _ := res[stats].(map[string]any)
			v, ok := st["rss_bytes"].(float64)
			return fmtMiB(v), ok
		}}
	}
	return []metric{
		{Field: "rate", Name: "deliveries/s (batches), both servers' clients", Better: "higher", Format: fmtCount},
		lat("local_p50_us", "p50 latency, A's clients (one tick at a time)"),
		lat("local_p99_us", "p99 latency, A's clients"),
		lat("remote_p50_us", "p50 latency, B's clients (through Redis)"),
		lat("remote_p99_us", "p99 latency, B's clients"),
		{Field: "latency_rate", Name: "deliveries/s (one tick at a time)", Format: fmtCount},
		{Field: "server_cpu_pct", Name: "server A CPU", Format: fmtPct},
		{Field: "server2_cpu_pct", Name: "server B CPU", Format: fmtPct},
		{Field: "redis_cpu_pct", Name: "redis-server CPU", Format: fmtPct},
		{Field: "servers_cpu_pct", Name: "A + B + redis-server CPU (one core)", Format: fmtPct},
		{Field: "loadgen_cpu_pct", Name: "load generator CPU", Format: fmtPct},
		{Field: "others_cpu_pct", Name: "other processes' CPU (noise)", Format: fmtPct},
		rss("server_stats", "server A RSS at the end"),
		rss("server2_stats", "server B RSS at the end"),
	}
}

// pairLabel returns the table heading of the run key "A+B".
func pairLabel(key string) string {
	a, b, _ := strings.Cut(key, "+")
	label := func(k string) peer {
		if i := slices.IndexFunc(peers, func(p peer) bool { return p.Key == k }); i >= 0 {
			return peers[i]
		}
		return peer{Key: k, Label: k}
	}
	return pair{label(a), label(b)}.Label()
}

// crossMarkdown returns the table of the cross-server scenarios, one
// column per pair (in the order they ran), ratios to the rally pair.
func (rep *report) crossMarkdown() string {
	var b strings.Builder
	for _, sc := range rep.Scenarios {
		if !sc.Cross {
			continue
		}
		var keys []string
		for _, r := range rep.Runs {
			if r.Scenario == sc.Key {
				keys = append(keys, r.Server)
			}
		}
		fmt.Fprintf(&b, "\n## %s\n\n", sc.Title)
		b.WriteString("Two servers, A and B, share one redis-server through their classic Redis adapters " +
			"(rally `redisadapter`, Node `@socket.io/redis-adapter` 8.3.0 on `redis` 4.7.1); " +
			"A, B and redis-server are pinned to CPU " + fmt.Sprint(rep.Machine.ServerCPU) +
			", the load generator to CPU " + fmt.Sprint(rep.Machine.LoadCPU) + ". " +
			"Half of the clients are on A, half on B; the trigger is on A, so A's clients get each tick locally " +
			"and B's through Redis. \"mixed X → Y\": A is X, B is Y. Ratios are to the rally pair.\n\n")
		b.WriteString("| metric |")
		for _, k := range keys {
			fmt.Fprintf(&b, " %s |", pairLabel(k))
		}
		b.WriteString("\n|---|")
		for range keys {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for i, mt := range crossMetrics() {
			arrow := map[string]string{"higher": " ↑", "lower": " ↓"}[mt.Better]
			fmt.Fprintf(&b, "| %s%s |", mt.Name, arrow)
			base, baseOK := rep.value(sc.Key, "rally+rally", mt.Field)
			for _, k := range keys {
				r := rep.run(sc.Key, k)
				v, ok := rep.value(sc.Key, k, mt.Field)
				switch {
				case r.Skipped != "":
					b.WriteString(" n/a |")
				case r.Error != "":
					if i == 0 {
						b.WriteString(" failed |")
					} else {
						b.WriteString(" |")
					}
				case mt.Show != nil:
					if text, ok := mt.Show(r.Result); ok {
						fmt.Fprintf(&b, " %s |", text)
					} else {
						b.WriteString(" – |")
					}
				case !ok:
					b.WriteString(" – |")
				case mt.Better != "" && baseOK && base != 0:
					fmt.Fprintf(&b, " %s (%.2f×) |", mt.Format(v), v/base)
				default:
					fmt.Fprintf(&b, " %s |", mt.Format(v))
				}
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

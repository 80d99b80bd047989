package main

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// metric is one row of the table: a field of the load generator's result.
type metric struct {
	Field string
	Name  string
	// Better is "higher", "lower" or "" (context only: no ratio).
	Better string
	// NoRatio leaves the ratio out where it says nothing (a percentage
	// that should be 100, a count that should be 0).
	NoRatio bool
	Format  func(float64) string
	// Show, when set, formats the row from the whole result instead of
	// Field; ok false prints "–".
	Show func(res map[string]any) (s string, ok bool)
}

func metricsOf(kind string) []metric {
	rate := func(unit string) metric {
		return metric{Field: "rate", Name: unit, Better: "higher", Format: fmtCount}
	}
	lat := func(field, name string) metric {
		return metric{Field: field, Name: name, Better: "lower", Format: fmtMicros}
	}
	cpu := []metric{
		{Field: "server_cpu_pct", Name: "server CPU", Format: fmtPct},
		{Field: "loadgen_cpu_pct", Name: "load generator CPU", Format: fmtPct},
		{Field: "others_cpu_pct", Name: "other processes' CPU (noise)", Format: fmtPct},
	}
	switch kind {
	case "broadcast", "poll-broadcast":
		return append([]metric{rate("deliveries/s (batches)"),
			lat("burst_p50_us", "p50 delivery latency (batches)"),
			lat("burst_p99_us", "p99 delivery latency (batches)"),
			lat("p50_us", "p50 delivery latency (one tick at a time)"),
			lat("p99_us", "p99 delivery latency (one tick at a time)"),
			{Field: "latency_rate", Name: "deliveries/s (one tick at a time)", Format: fmtCount}}, cpu...)
	case "echo", "poll-echo":
		return append([]metric{rate("acks/s"),
			lat("p50_us", "p50 round trip"), lat("p99_us", "p99 round trip")}, cpu...)
	case "handshake", "poll-handshake":
		return append([]metric{rate("connections/s"),
			lat("p50_us", "p50 handshake"), lat("p99_us", "p99 handshake")}, cpu...)
	case "jitter":
		exact := func(field, name string, f func(float64) string) metric {
			return metric{Field: field, Name: name, Better: "lower", NoRatio: true, Format: f}
		}
		return append([]metric{
			{Field: "broadcasts", Name: "broadcasts sent", Format: fmtCount},
			{Field: "delivered_pct", Name: "delivered / expected", Better: "higher", NoRatio: true, Format: fmtPct2},
			exact("duplicates", "duplicates", fmtCount),
			exact("out_of_order", "received out of order", fmtCount),
			{Field: "recovered_pct", Name: "reconnects recovered", Better: "higher", NoRatio: true, Show: showRecovered},
			{Field: "lost_despite_recovery", Name: "lost by clients whose every reconnect was recovered", Better: "lower", NoRatio: true,
				Show: ifRecovery("lost_despite_recovery", fmtCount)},
			lat("p50_us", "p50 replay latency (recovered reconnects)"),
			lat("p99_us", "p99 replay latency (recovered reconnects)"),
			{Field: "replayed_per_reconnect", Name: "ticks replayed per recovered reconnect",
				Show: ifRecovery("replayed_per_reconnect", fmtFloat1)},
			lat("rejoin_p50_us", "p50 CONNECT round trip, every reconnect"),
			lat("rejoin_p99_us", "p99 CONNECT round trip, every reconnect"),
		}, cpu...)
	case "idle":
		return append([]metric{
			{Field: "per_conn_bytes", Name: "RSS growth per connection, after GC", Better: "lower", Format: fmtBytes},
			{Field: "per_conn_raw_bytes", Name: "RSS growth per connection, before GC", Better: "lower", Format: fmtBytes},
			{Field: "rss_after", Name: "server RSS, all connected, after GC", Format: fmtMiB},
			{Field: "connect_rate", Name: "connect rate while opening (50 dialers)", Format: fmtCount},
		}, idleMetrics()...)
	}
	return nil
}

func fmtCount(v float64) string {
	s := strconv.FormatInt(int64(math.Round(v)), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func fmtMicros(us float64) string {
	switch {
	case us >= 100e3:
		return fmt.Sprintf("%.0f ms", us/1e3)
	case us >= 10e3:
		return fmt.Sprintf("%.1f ms", us/1e3)
	case us >= 1e3:
		return fmt.Sprintf("%.2f ms", us/1e3)
	default:
		return fmt.Sprintf("%.0f µs", us)
	}
}

func fmtPct(v float64) string { return fmt.Sprintf("%.0f %%", v) }

func fmtPct2(v float64) string { return fmt.Sprintf("%.2f %%", v) }

func fmtFloat1(v float64) string { return fmt.Sprintf("%.1f", v) }

// ifRecovery shows field only where the server had recovery on.
func ifRecovery(field string, format func(float64) string) func(map[string]any) (string, bool) {
	return func(res map[string]any) (string, bool) {
		v, ok := res[field].(float64)
		if on, _ := res["recovery"].(bool); !on || !ok {
			return "", false
		}
		return format(v), true
	}
}

// showRecovered prints "recovered / reconnects (percent)".
func showRecovered(res map[string]any) (string, bool) {
	rec, ok1 := res["recovered"].(float64)
	all, ok2 := res["reconnects"].(float64)
	if !ok1 || !ok2 {
		return "", false
	}
	if all == 0 {
		return "0 / 0", true
	}
	return fmt.Sprintf("%s / %s (%.1f %%)", fmtCount(rec), fmtCount(all), 100*rec/all), true
}

func fmtBytes(v float64) string { return fmt.Sprintf("%.1f KiB", v/1024) }

func fmtMiB(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }

type report struct {
	Machine   machine
	Scenarios []scenario
	Peers     []peer
	Runs      []Run
}

func (rep *report) run(scen, server string) *Run {
	for i := range rep.Runs {
		if rep.Runs[i].Scenario == scen && rep.Runs[i].Server == server {
			return &rep.Runs[i]
		}
	}
	return nil
}

// value returns a figure of a successful run.
func (rep *report) value(scen, server, field string) (float64, bool) {
	r := rep.run(scen, server)
	if r == nil || r.Error != "" {
		return 0, false
	}
	v, ok := r.Result[field].(float64)
	return v, ok
}

func (rep *report) markdown() string {
	var b bytes.Buffer
	m := rep.Machine
	title := "rally side-by-side benchmark"
	if m.Smoke {
		title += " (smoke configuration: too small to compare servers)"
	}
	fmt.Fprintf(&b, "# %s\n\n", title)
	fmt.Fprintf(&b, "- command: `%s` (from the repository root), %s\n", m.Command, m.Elapsed)
	fmt.Fprintf(&b, "- machine: %d CPUs (`nproc`), %s, %s RAM, Linux %s\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	fmt.Fprintf(&b, "- pinning: %s\n", m.Pinning)
	fmt.Fprintf(&b, "- rally: %s; %s; Node %s\n", m.Rally, m.Go, m.Node)
	var vs []string
	for _, p := range rep.Peers {
		if v := m.Versions[p.Key]; v != "" {
			vs = append(vs, p.Label+" "+v)
		}
	}
	fmt.Fprintf(&b, "- versions: %s\n", strings.Join(vs, ", "))
	fmt.Fprintf(&b, "- load generator: %s\n", m.LoadgenGo)
	if m.Repeat > 1 {
		fmt.Fprintf(&b, "- each figure is from the median of %d interleaved tries (by deliveries/s, acks/s, connections/s or bytes per connection)\n", m.Repeat)
	}
	b.WriteString("- every server runs with its defaults; ratios are the server's figure over rally's (↑ higher is better, ↓ lower is better)\n")
	for _, sc := range rep.Scenarios {
		if sc.Recovery {
			fmt.Fprintf(&b, "- %s: connection state recovery on, with its defaults (rally `Recovery{}`, Node `connectionStateRecovery: {}`); n/a: the peer has none\n", sc.Key)
		}
		if sc.Msgpack {
			fmt.Fprintf(&b, "- %s: the socket.io-msgpack-parser format (rally `msgpackparser.Parser{}`, Node `parser: require(\"socket.io-msgpack-parser\")` 3.0.2), one MessagePack map per binary message; n/a: not set up for the peer\n", sc.Key)
		}
	}
	b.WriteString("\n")

	tableStart, rows := b.Len(), 0
	b.WriteString("| scenario | metric |")
	for _, p := range rep.Peers {
		fmt.Fprintf(&b, " %s |", p.Label)
	}
	b.WriteString("\n|---|---|")
	for range rep.Peers {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, sc := range rep.Scenarios {
		if sc.Cross {
			continue // crossMarkdown's table
		}
		rows++
		for i, mt := range metricsOf(sc.Kind) {
			name := sc.Title
			if i > 0 {
				name = ""
			}
			arrow := map[string]string{"higher": " ↑", "lower": " ↓"}[mt.Better]
			fmt.Fprintf(&b, "| %s | %s%s |", name, mt.Name, arrow)
			base, baseOK := rep.value(sc.Key, "rally", mt.Field)
			for _, p := range rep.Peers {
				r := rep.run(sc.Key, p.Key)
				v, ok := rep.value(sc.Key, p.Key, mt.Field)
				switch {
				case r != nil && r.Skipped != "":
					b.WriteString(" n/a |")
				case r != nil && r.Error != "":
					if i == 0 {
						b.WriteString(" failed |")
					} else {
						b.WriteString(" |")
					}
				case mt.Show != nil && r != nil:
					if text, ok := mt.Show(r.Result); ok {
						fmt.Fprintf(&b, " %s |", text)
					} else {
						b.WriteString(" – |")
					}
				case !ok:
					b.WriteString(" – |")
				case mt.Better != "" && !mt.NoRatio && baseOK && base != 0:
					fmt.Fprintf(&b, " %s (%.2f×) |", mt.Format(v), v/base)
				default:
					fmt.Fprintf(&b, " %s |", mt.Format(v))
				}
			}
			b.WriteString("\n")
		}
	}
	if rows == 0 {
		b.Truncate(tableStart)
	}
	b.WriteString(rep.crossMarkdown())

	var noisy []string
	for _, r := range rep.Runs {
		if v, ok := r.Result["others_cpu_pct"].(float64); ok && v > 25 && r.Error == "" {
			noisy = append(noisy, fmt.Sprintf("%s / %s (%.0f %%)", r.Scenario, r.Server, v))
		}
	}
	if len(noisy) > 0 {
		b.WriteString("\nNoisy runs (other processes used more than 25 % of a core meanwhile; their figures are suspect): " +
			strings.Join(noisy, ", ") + "\n")
	}

	var failed []string
	for _, r := range rep.Runs {
		if r.Error != "" {
			failed = append(failed, fmt.Sprintf("- %s / %s: %s", r.Scenario, r.Server, r.Error))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed runs:\n\n" + strings.Join(failed, "\n") + "\n")
	}

	if t := rep.targets(); len(t) > 0 {
		b.WriteString("\n## Targets (rally against its peers)\n\n| target | measured | met |\n|---|---|---|\n")
		for _, line := range t {
			b.WriteString(line + "\n")
		}
	}
	b.WriteString(rep.moreNotes())
	b.WriteString(`
Notes: broadcast triggers a batch of ticks with one "blast" event and sends
the next batch once every client received every tick (a closed loop); CPU
figures are for that window. Latency is arrival time minus the server's
emit timestamp, measured in a second phase that broadcasts one tick at a
time (within a batch, a server that queues stamps every tick at once while
one that writes synchronously stamps each after the previous one is out). Echo runs one
emit-with-ack at a time per client. Handshakes open a websocket-only
session, join "/" and reset the TCP connection. Idle memory is the growth
of the server's VmRSS (/proc) from before connecting to after every
connection joined, each read after asking the server to collect garbage.
Jitter: every client connects, then a control client has the server
broadcast one numbered tick at a steady rate while each client cuts its
TCP connection at random, stays down a while and reconnects (with its
private session id and last offset when the server gave it one); expected
deliveries are clients × broadcasts, as every client is connected before
the first and again after the last. Replay latency is from a recovered
reconnect's CONNECT sent to its reply received, the missed ticks coming
in between. A load generator CPU near 100 % means the figure is bounded
by the load generator, not the server.
`)
	return b.String()
}

// targets checks the project's goals on the scenarios that ran.
func (rep *report) targets() []string {
	var out []string
	check := func(name, measured string, ok bool) {
		met := "no"
		if ok {
			met = "yes"
		}
		out = append(out, fmt.Sprintf("| %s | %s | %s |", name, measured, met))
	}
	ratio := func(scen, field, peer string) (float64, bool) {
		r, ok1 := rep.value(scen, "rally", field)
		p, ok2 := rep.value(scen, peer, field)
		if !ok1 || !ok2 || p == 0 {
			return 0, false
		}
		return r / p, true
	}
	for _, sc := range rep.Scenarios {
		kind := sc.Kind
		if sc.Cross {
			kind = "cross"
		}
		switch kind {
		case "broadcast":
			if x, ok := ratio(sc.Key, "rate", "bare"); ok {
				check(sc.Title+": deliveries/s ≥ 0.8× bare", fmt.Sprintf("%.2f×", x), x >= 0.8)
			}
			if x, ok := ratio(sc.Key, "rate", "node"); ok {
				check(sc.Title+": deliveries/s ≥ 3× Node", fmt.Sprintf("%.2f×", x), x >= 3)
			}
			for _, l := range []struct{ field, mode string }{{"burst_p99_us", "batches"}, {"p99_us", "one tick at a time"}} {
				r, ok1 := rep.value(sc.Key, "rally", l.field)
				n, ok2 := rep.value(sc.Key, "node", l.field)
				if ok1 && ok2 {
					check(sc.Title+": p99 latency ("+l.mode+") ≤ Node's", fmt.Sprintf("%s vs %s", fmtMicros(r), fmtMicros(n)), r <= n)
				}
			}
			if x, ok := ratio(sc.Key, "rate", "zishang"); ok {
				check(sc.Title+": deliveries/s ≥ 1.5× zishang520", fmt.Sprintf("%.2f×", x), x >= 1.5)
			}
		case "echo":
			if x, ok := ratio(sc.Key, "rate", "bare"); ok {
				check(sc.Title+": acks/s ≥ 0.9× bare", fmt.Sprintf("%.2f×", x), x >= 0.9)
			}
			r, ok1 := rep.value(sc.Key, "rally", "p99_us")
			n, ok2 := rep.value(sc.Key, "node", "p99_us")
			if ok1 && ok2 {
				check(sc.Title+": p99 below Node's", fmt.Sprintf("%s vs %s", fmtMicros(r), fmtMicros(n)), r < n)
			}
		case "poll-handshake", "poll-echo":
			if x, ok := ratio(sc.Key, "rate", "node"); ok {
				check(sc.Title+": ≥ 2× Node", fmt.Sprintf("%.2f×", x), x >= 2)
			}
		case "cross":
			r, ok1 := rep.value(sc.Key, "rally+rally", "rate")
			n, ok2 := rep.value(sc.Key, "node+node", "rate")
			if ok1 && ok2 && n > 0 {
				check(sc.Title+": rally pair ≥ 2× the Node pair", fmt.Sprintf("%.2f×", r/n), r/n >= 2)
			}
		case "handshake":
			if x, ok := ratio(sc.Key, "rate", "bare"); ok {
				check(sc.Title+": connections/s ≥ 0.9× bare", fmt.Sprintf("%.2f×", x), x >= 0.9)
			}
		case "jitter":
			if !sc.Recovery {
				break
			}
			r := rep.run(sc.Key, "rally")
			if r == nil || r.Error != "" {
				break
			}
			f := func(k string) float64 { v, _ := r.Result[k].(float64); return v }
			measured := fmt.Sprintf("%.2f %% delivered, %s duplicates, %s out of order, %s / %s recovered",
				f("delivered_pct"), fmtCount(f("duplicates")), fmtCount(f("out_of_order")),
				fmtCount(f("recovered")), fmtCount(f("reconnects")))
			check(sc.Title+": rally delivers every broadcast once, in order, and recovers every reconnect", measured,
				f("expected") > 0 && f("delivered") == f("expected") && f("duplicates") == 0 &&
					f("out_of_order") == 0 && f("recovered") == f("reconnects"))
		case "idle":
			if x, ok := ratio(sc.Key, "per_conn_bytes", "node"); ok {
				check(sc.Title+": memory per connection ≤ 0.5× Node's", fmt.Sprintf("%.2f×", x), x <= 0.5)
			}
		}
	}
	return out
}

func (rep *report) jsonView() any {
	type scen struct {
		Key, Title, Kind string
		Args             []string
	}
	var ss []scen
	for _, s := range rep.Scenarios {
		ss = append(ss, scen{s.Key, s.Title, s.Kind, s.Args})
	}
	var servers []string
	for _, p := range rep.Peers {
		servers = append(servers, p.Key)
	}
	return map[string]any{
		"machine":   rep.Machine,
		"scenarios": ss,
		"servers":   servers,
		"runs":      rep.Runs,
		"targets":   rep.targets(),
	}
}

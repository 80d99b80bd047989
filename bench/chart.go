package main

import (
	"fmt"
	"html"
	"strings"
)

// panel is one small bar chart: one bar per server.
type panel struct {
	Title  string
	Scen   string
	Field  string
	Better string
	Format func(float64) string
}

func (rep *report) panels() []panel {
	var ps []panel
	for _, sc := range rep.Scenarios {
		if sc.Cross {
			continue // pairs, not servers: only in the table
		}
		switch sc.Kind {
		case "broadcast":
			ps = append(ps,
				panel{sc.Title + ": deliveries/s", sc.Key, "rate", "higher", fmtCount},
				panel{sc.Title + ": p99 delivery latency", sc.Key, "p99_us", "lower", fmtMicros})
		case "echo":
			ps = append(ps,
				panel{sc.Title + ": acks/s", sc.Key, "rate", "higher", fmtCount},
				panel{sc.Title + ": p99 round trip", sc.Key, "p99_us", "lower", fmtMicros})
		case "idle":
			ps = append(ps, panel{sc.Title + ": RSS per connection", sc.Key, "per_conn_bytes", "lower", fmtBytes})
		case "handshake", "poll-handshake":
			ps = append(ps, panel{sc.Title + ": connections/s", sc.Key, "rate", "higher", fmtCount})
		case "poll-echo":
			ps = append(ps, panel{sc.Title + ": acks/s", sc.Key, "rate", "higher", fmtCount})
		case "poll-broadcast":
			ps = append(ps, panel{sc.Title + ": deliveries/s", sc.Key, "rate", "higher", fmtCount})
		case "jitter":
			ps = append(ps, panel{sc.Title + ": delivered", sc.Key, "delivered_pct", "higher", fmtPct2})
			if sc.Recovery {
				ps = append(ps, panel{sc.Title + ": p99 replay latency", sc.Key, "p99_us", "lower", fmtMicros})
			}
		}
	}
	return ps
}

var peerColors = map[string]string{
	"rally":   "#d9480f",
	"node":    "#2b8a3e",
	"zishang": "#1971c2",
	"bare":    "#868e96",
}

// chart draws every panel as horizontal bars with each server's figure and
// its ratio to rally, two panels a row.
func (rep *report) chart() []byte {
	ps := rep.panels()
	const (
		cols    = 2
		panelW  = 520
		labelW  = 150
		barH    = 20
		gap     = 6
		margin  = 20
		headerH = 70
	)
	panelH := 44 + len(rep.Peers)*(barH+gap) + 10
	rows := (len(ps) + cols - 1) / cols
	width := margin*2 + cols*panelW
	height := headerH + rows*panelH + margin

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	m := rep.Machine
	title := "rally side-by-side benchmark"
	if m.Smoke {
		title += " (smoke configuration)"
	}
	fmt.Fprintf(&b, `<text x="%d" y="26" font-size="17" font-weight="bold">%s</text>`+"\n", margin, esc(title))
	fmt.Fprintf(&b, `<text x="%d" y="44" fill="#444">%s</text>`+"\n", margin,
		esc(fmt.Sprintf("%d × %s · servers on CPU %d, load generator on CPU %d · rally %s · %s",
			m.CPUs, m.CPUModel, m.ServerCPU, m.LoadCPU, m.Rally, m.Go)))
	fmt.Fprintf(&b, `<text x="%d" y="60" fill="#444">%s</text>`+"\n", margin,
		esc("bar labels: figure (ratio to rally); ↑ higher is better, ↓ lower is better"))

	for i, p := range ps {
		x0 := margin + (i%cols)*panelW
		y0 := headerH + (i/cols)*panelH
		arrow := map[string]string{"higher": "↑", "lower": "↓"}[p.Better]
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s %s</text>`+"\n", x0, y0+18, esc(p.Title), arrow)
		maxV := 0.0
		for _, pe := range rep.Peers {
			if v, ok := rep.value(p.Scen, pe.Key, p.Field); ok && v > maxV {
				maxV = v
			}
		}
		base, baseOK := rep.value(p.Scen, "rally", p.Field)
		barMax := float64(panelW - labelW - 150)
		for j, pe := range rep.Peers {
			y := y0 + 30 + j*(barH+gap)
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", x0+labelW-8, y+barH-6, esc(pe.Label))
			v, ok := rep.value(p.Scen, pe.Key, p.Field)
			if r := rep.run(p.Scen, pe.Key); r != nil && r.Skipped != "" {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#868e96">n/a</text>`+"\n", x0+labelW, y+barH-6)
				continue
			}
			if !ok {
				fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#c92a2a">failed or not run</text>`+"\n", x0+labelW, y+barH-6)
				continue
			}
			w := 0.0
			if maxV > 0 {
				w = barMax * v / maxV
			}
			color := peerColors[pe.Key]
			if color == "" {
				color = "#495057"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0+labelW, y, w, barH, color)
			label := p.Format(v)
			if baseOK && base != 0 {
				label += fmt.Sprintf(" (%.2f×)", v/base)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%d">%s</text>`+"\n", float64(x0+labelW)+w+6, y+barH-6, esc(label))
		}
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

func esc(s string) string { return html.EscapeString(s) }

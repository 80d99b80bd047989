package main

import (
	"strconv"
	"strings"
	"time"
)

// pollScenarios are the HTTP long-polling scenarios (Engine.IO's polling
// transport only, no upgrade): handshakes, emit-with-ack echo and
// broadcast. The servers without polling (bare) are n/a.
func pollScenarios(smoke bool, d time.Duration) []scenario {
	loops, clients, fans, batch, lat := 50, 100, 500, 20, "3s"
	win := []string{"-duration", d.String(), "-warmup", "1s"}
	if smoke {
		loops, clients, fans, batch, lat = 5, 5, 10, 10, "200ms"
		win = []string{"-duration", "300ms", "-warmup", "100ms"}
	}
	return []scenario{
		{Key: "poll-handshake", Title: "long-polling handshakes, " + strconv.Itoa(loops) + " parallel", Kind: "poll-handshake",
			Args: append([]string{"-concurrency", strconv.Itoa(loops)}, win...), profile: "cpu", Polling: true},
		{Key: "poll-echo", Title: "emit-with-ack echo over long-polling, " + strconv.Itoa(clients) + " clients", Kind: "poll-echo",
			Args: append([]string{"-clients", strconv.Itoa(clients)}, win...), profile: "cpu", Polling: true},
		{Key: "poll-broadcast", Title: "broadcast to " + strconv.Itoa(fans) + " long-polling clients", Kind: "poll-broadcast",
			Args:    append([]string{"-clients", strconv.Itoa(fans), "-batch", strconv.Itoa(batch), "-latency-duration", lat}, win...),
			profile: "cpu", Polling: true},
	}
}

// moreNotes explains, under the table, the polling and large idle
// scenarios that ran, and why idle-100k did not where the open-file
// limit was too low.
func (rep *report) moreNotes() string {
	var poll, big bool
	for _, sc := range rep.Scenarios {
		poll = poll || sc.Polling
		big = big || sc.Files > 0
	}
	var s string
	if poll {
		s += `
Long-polling: Engine.IO's polling transport only (EIO=4, no upgrade),
each client holding two keep-alive HTTP connections, one for its GETs and
one for its POSTs, as browsers do. A polling handshake is: GET the open
packet, POST the CONNECT, GET its reply (then POST the close packet,
not timed). Polling echo POSTs each emit and reads the ack from the GET
it keeps pending. Polling broadcast is broadcast's closed loop with
every client keeping a GET pending: its batches come mostly packed
several ticks to a GET answer, its one-tick phase one tick per answer.
`
	}
	for _, r := range rep.Runs {
		if r.Skipped != "" && strings.Contains(r.Skipped, "open-file limit") {
			s += "\n" + r.Scenario + " did not run (n/a): " + r.Skipped + ".\n"
			break
		}
	}
	if big {
		s += `
Large idle: the load generator hands each joined connection to one epoll
loop that answers the Engine.IO pings, and spreads them over several
loopback source addresses so as not to run out of ephemeral ports; after
measuring it holds them for longer than a ping interval and checks that
the server still counts every one. It is n/a at once, rather than
failing half way, when the open-file limit cannot reach the connection
count.
`
	}
	return s
}

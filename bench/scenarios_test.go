package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPollAndBigIdleScenarios(t *testing.T) {
	for _, smoke := range []bool{false, true} {
		ss := scenarios(smoke, 5*time.Second)
		keys := map[string]int{}
		for i, sc := range ss {
			if _, dup := keys[sc.Key]; dup {
				t.Errorf("smoke=%v: key %s twice", smoke, sc.Key)
			}
			keys[sc.Key] = i
			if sc.Polling != strings.HasPrefix(sc.Kind, "poll-") {
				t.Errorf("smoke=%v: %s: kind %s, Polling %v", smoke, sc.Key, sc.Kind, sc.Polling)
			}
			if len(metricsOf(sc.Kind)) == 0 {
				t.Errorf("smoke=%v: %s: no metrics for kind %s", smoke, sc.Key, sc.Kind)
			}
		}
		for _, k := range []string{"poll-handshake", "poll-echo", "poll-broadcast"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("smoke=%v: no %s", smoke, k)
			}
		}
		big := "idle-100k"
		if smoke {
			big = "idle-500"
		}
		i, ok := keys[big]
		if !ok {
			t.Fatalf("smoke=%v: no %s", smoke, big)
		}
		sc := ss[i]
		if sc.Kind != "idle" || !slices.Contains(sc.Args, "-park") || argValue(sc.Args, "-sources") == "" {
			t.Errorf("smoke=%v: %s: kind %s args %v", smoke, big, sc.Kind, sc.Args)
		}
		if smoke {
			continue
		}
		if n := argValue(sc.Args, "-clients"); n != "100000" {
			t.Errorf("%s: -clients %s", big, n)
		}
		if sc.Files <= 100000 || sc.Timeout < 150*time.Second || argValue(sc.Args, "-hold") == "0s" {
			t.Errorf("%s: Files %d, Timeout %s, args %v", big, sc.Files, sc.Timeout, sc.Args)
		}
	}
	for _, p := range peers {
		if want := p.Key != "bare"; p.polling != want {
			t.Errorf("peer %s: polling %v", p.Key, p.polling)
		}
	}
}

// argValue returns the value after flag in args, or "".
func argValue(args []string, flag string) string {
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

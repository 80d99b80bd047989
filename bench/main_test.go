package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMsgpackScenarios(t *testing.T) {
	for _, smoke := range []bool{false, true} {
		ss := scenarios(smoke, 5*time.Second)
		keys := map[string]bool{}
		found := 0
		for i, sc := range ss {
			if keys[sc.Key] {
				t.Errorf("smoke=%v: key %s twice", smoke, sc.Key)
			}
			keys[sc.Key] = true
			if !sc.Msgpack {
				continue
			}
			found++
			base := strings.TrimSuffix(sc.Key, "-msgpack")
			if i == 0 || ss[i-1].Key != base || ss[i-1].Msgpack {
				t.Errorf("smoke=%v: %s does not follow %s", smoke, sc.Key, base)
				continue
			}
			prev := ss[i-1]
			if sc.Kind != prev.Kind || !slices.Equal(sc.Args, append(slices.Clone(prev.Args), "-parser", "msgpack")) {
				t.Errorf("smoke=%v: %s: kind %s args %v, counterpart %s %v", smoke, sc.Key, sc.Kind, sc.Args, prev.Kind, prev.Args)
			}
		}
		if found != 2 {
			t.Errorf("smoke=%v: %d msgpack scenarios, want 2", smoke, found)
		}
	}
	for _, p := range peers {
		if want := p.Key == "rally" || p.Key == "node"; p.msgpack != want {
			t.Errorf("peer %s: msgpack %v", p.Key, p.msgpack)
		}
	}
}

func TestCrossPairs(t *testing.T) {
	pick := func(keys ...string) []peer {
		var ps []peer
		for _, k := range keys {
			i := slices.IndexFunc(peers, func(p peer) bool { return p.Key == k })
			ps = append(ps, peers[i])
		}
		return ps
	}
	keys := func(ps []pair) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Key())
		}
		return out
	}
	ps, err := crossPairs(pick("rally", "node", "bare"), nil)
	want := []string{"rally+rally", "node+node", "bare+bare", "rally+node", "node+rally"}
	if err != nil || !slices.Equal(keys(ps), want) {
		t.Errorf("default pairs: %v, %v; want %v", keys(ps), err, want)
	}
	if ps[3].Label() != "mixed rally → Node socket.io" || ps[0].Label() != "rally pair" {
		t.Errorf("labels %q, %q", ps[3].Label(), ps[0].Label())
	}
	ps, err = crossPairs(pick("rally", "node"), []string{"node+rally"})
	if err != nil || !slices.Equal(keys(ps), []string{"node+rally"}) {
		t.Errorf("-pairs node+rally: %v, %v", keys(ps), err)
	}
	for _, bad := range []string{"rally", "rally+zishang", "rally+"} {
		if _, err := crossPairs(pick("rally", "node"), []string{bad}); err == nil {
			t.Errorf("-pairs %s: no error", bad)
		}
	}
}

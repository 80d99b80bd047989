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

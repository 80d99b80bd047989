package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// rerender writes results.md and chart.svg of dir again from its
// results.json, with the report code as it is now: a table or chart
// changed after a long run does not need the run again.
func rerender(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var saved struct {
		Machine   machine
		Scenarios []struct{ Key string }
		Servers   []string
		Runs      []Run
	}
	if err := json.Unmarshal(data, &saved); err != nil {
		return fmt.Errorf("reading %s/results.json: %w", dir, err)
	}
	rep := report{Machine: saved.Machine, Runs: saved.Runs}
	known := scenarios(saved.Machine.Smoke, 5*time.Second)
	for _, s := range saved.Scenarios {
		i := slices.IndexFunc(known, func(k scenario) bool { return k.Key == s.Key })
		if i < 0 {
			return fmt.Errorf("%s/results.json: unknown scenario %q", dir, s.Key)
		}
		rep.Scenarios = append(rep.Scenarios, known[i])
	}
	for _, key := range saved.Servers {
		i := slices.IndexFunc(peers, func(p peer) bool { return p.Key == key })
		if i < 0 {
			return fmt.Errorf("%s/results.json: unknown server %q", dir, key)
		}
		rep.Peers = append(rep.Peers, peers[i])
	}
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), rep.chart(), 0o644)
}

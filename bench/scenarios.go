package main

import "time"

// scenarios returns every scenario, in the order they run and are
// reported: the websocket ones of baseScenarios, then the long-polling
// ones, then the large idle one.
func scenarios(smoke bool, d time.Duration) []scenario {
	ss := baseScenarios(smoke, d)
	ss = append(ss, pollScenarios(smoke, d)...)
	return append(ss, bigIdleScenario(smoke))
}

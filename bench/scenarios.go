package main

import "time"

// scenarios returns every scenario, in the order they run and are
// reported: the websocket ones of baseScenarios, then the long-polling
// ones, then the large idle one (not with -smoke, whose idle-500 parks its
// connections the same way).
func scenarios(smoke bool, d time.Duration) []scenario {
	ss := baseScenarios(smoke, d)
	ss = append(ss, pollScenarios(smoke, d)...)
	if smoke {
		return ss
	}
	return append(ss, bigIdleScenario())
}

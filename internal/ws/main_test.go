package ws

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if a goroutine outlives the tests: a connection
// left open, or the poller still running with nothing to watch.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

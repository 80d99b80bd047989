package rally

// NewHubNoPoller is NewHub with every websocket read by a goroutine of its
// own instead of the epoll poller, so that tests cover both read modes.
func NewHubNoPoller(opts *Options) *Hub { return newHub(opts, true) }

// RecoveryState returns what the in-memory recovery store of n keeps.
func RecoveryState(n *Namespace) (sessions, packets int, bytes int64) {
	m := n.adapter.(*memoryAdapter)
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions), len(m.log), m.bytes
}

package rally

// NewHubNoPoller is NewHub with every websocket read by a goroutine of its
// own instead of the epoll poller, so that tests cover both read modes.
func NewHubNoPoller(opts *Options) *Hub { return newHub(opts, true) }

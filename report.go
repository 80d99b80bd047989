package rally

// reportError hands an error raised while serving s to the OnError hook.
func (h *Hub) reportError(s *Socket, err error) {
	if h.opts.OnError != nil {
		h.opts.OnError(s, err)
		return
	}
	attrs := []any{"error", err}
	if s != nil {
		attrs = append(attrs, "namespace", s.nsp.name, "socket", s.id)
	}
	h.log.Warn("rally: socket error", attrs...)
}

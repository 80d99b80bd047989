package rally

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"

	"github.com/rallyhq/rally/internal/parser"
)

// OfMatch returns a parent namespace: clients may join any namespace whose
// name match accepts, given the name and the client's auth payload (Node's
// io.of(function)); OfRegexp is the common case (io.of(/regexp/)). Each
// accepted name becomes a child namespace at its first connection; it has
// the parent's handlers, middleware and listeners, which are registered on
// the parent, and can have its own besides (hub.Of(name) returns it once
// it exists). Emitting on the parent reaches every child's sockets.
//
// match runs on a goroutine of its own and may take its time (a database
// lookup): the client waits for its CONNECT answer, "Invalid namespace"
// when no parent accepts the name. Namespaces created with Of come first.
// Each accepted name makes a child namespace that stays, as with the
// official server, unless Options.CleanupEmptyChildNamespaces is set: a
// client can create as many as match accepts, so accept only names that
// exist or set the cleanup.
func (h *Hub) OfMatch(match func(name string, auth json.RawMessage) bool) *Namespace {
	if match == nil {
		panic("rally: OfMatch: nil match")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	n := newNamespace(h, fmt.Sprintf("/(parent %d)", len(h.parents)+1))
	n.match = match
	n.children = make(map[string]*Namespace)
	n.adapter = parentAdapter{n}
	h.parents = append(h.parents, n)
	return n
}

// OfRegexp is OfMatch for the names re matches.
func (h *Hub) OfRegexp(re *regexp.Regexp) *Namespace {
	return h.OfMatch(func(name string, _ json.RawMessage) bool { return re.MatchString(name) })
}

// Parent returns the parent namespace of a child namespace, or nil.
func (n *Namespace) Parent() *Namespace { return n.parent }

// Children returns the child namespaces of a parent namespace.
func (n *Namespace) Children() []*Namespace {
	n.hub.mu.RLock()
	defer n.hub.mu.RUnlock()
	return slices.Collect(maps.Values(n.children))
}

// Close removes the namespace from the hub: its sockets are disconnected
// (ReasonServerNamespaceDisconnect; the clients do not reconnect by
// themselves), its adapter closed, and later CONNECTs to its name get
// "Invalid namespace", unless a parent namespace accepts the name again.
// Closing a parent closes its children too.
func (n *Namespace) Close() error {
	h := n.hub
	h.mu.Lock()
	if n.removed {
		h.mu.Unlock()
		return nil
	}
	var children []*Namespace
	if n.match != nil {
		h.parents = slices.DeleteFunc(h.parents, func(p *Namespace) bool { return p == n })
		children = slices.Collect(maps.Values(n.children))
	}
	n.removeLocked()
	h.mu.Unlock()
	var errs []error
	for _, c := range children {
		errs = append(errs, c.Close())
	}
	for _, s := range n.connected() {
		s.close(ReasonServerNamespaceDisconnect, true)
	}
	if n.match == nil {
		if err := n.adapter.Close(); err != nil {
			errs = append(errs, fmt.Errorf("rally: closing the adapter of %s: %w", n.name, err))
		}
	}
	return errors.Join(errs...)
}

// removeLocked takes the namespace out of the hub's maps; h.mu is locked.
func (n *Namespace) removeLocked() {
	n.mu.Lock()
	n.removed = true
	n.mu.Unlock()
	if n.hub.namespaces[n.name] == n {
		delete(n.hub.namespaces, n.name)
	}
	if n.parent != nil {
		delete(n.parent.children, n.name)
	}
}

func (n *Namespace) connected() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return slices.Collect(maps.Values(n.sockets))
}

// child returns the child namespace for name of the first parent that
// accepts it, creating it, or nil.
func (h *Hub) child(name string, auth json.RawMessage) *Namespace {
	h.mu.RLock()
	parents := slices.Clone(h.parents)
	h.mu.RUnlock()
	for _, p := range parents {
		if !p.accepts(name, auth) {
			continue
		}
		h.mu.Lock()
		n := h.namespaces[name]
		if n == nil && !p.removed {
			n = newNamespace(h, name)
			n.parent = p
			h.namespaces[name] = n
			p.children[name] = n
			h.noteNamespaceCreated(n)
		}
		h.mu.Unlock()
		if n != nil {
			return n
		}
	}
	return nil
}

// accepts calls a parent's match, a panic in it refusing the name.
func (n *Namespace) accepts(name string, auth json.RawMessage) (ok bool) {
	err := protect(func() error { ok = n.match(name, auth); return nil })
	if err != nil {
		n.hub.reportError(nil, fmt.Errorf("rally: OfMatch function for %q: %w", name, err))
		return false
	}
	return ok
}

// connectDynamic answers a CONNECT to a namespace that does not exist, on
// a goroutine of its own: a parent namespace may accept it.
func (c *conn) connectDynamic(p *parser.Packet) {
	// A match in progress counts as an event waiting: a client that
	// floods CONNECTs is read no faster than its matches run.
	size := p.Size() + int64(len(p.Namespace))
	c.hold(size)
	c.hub.startDispatch(func() {
		defer c.hub.dispatchDone()
		defer c.release(size)
		defer c.doneMatching(p.Namespace)
		if n := c.hub.child(p.Namespace, p.Data); n != nil {
			c.join(n, p.Data)
			return
		}
		c.refuseNamespace(p.Namespace)
	})
}

// matchingLocked notes that a CONNECT to name is being matched; a second
// one meanwhile is a protocol error, as a second CONNECT is. c.mu is
// locked.
func (c *conn) matchingLocked(name string) bool {
	if c.matching == nil {
		c.matching = make(map[string]bool)
	}
	if c.matching[name] {
		return false
	}
	c.matching[name] = true
	return true
}

func (c *conn) doneMatching(name string) {
	c.mu.Lock()
	delete(c.matching, name)
	c.mu.Unlock()
}

// cleanupIfEmpty removes a child namespace that its last socket left, with
// Options.CleanupEmptyChildNamespaces.
func (n *Namespace) cleanupIfEmpty() {
	if n.parent == nil || !n.hub.opts.CleanupEmptyChildNamespaces {
		return
	}
	h := n.hub
	h.mu.Lock()
	n.mu.RLock()
	empty := len(n.sockets) == 0 && !n.removed
	n.mu.RUnlock()
	if !empty {
		h.mu.Unlock()
		return
	}
	n.removeLocked()
	h.mu.Unlock()
	if err := n.adapter.Close(); err != nil {
		h.reportError(nil, fmt.Errorf("rally: closing the adapter of %s: %w", n.name, err))
	}
}

// parentAdapter is a parent namespace's adapter: it applies every
// operation to the children.
type parentAdapter struct{ n *Namespace }

func (a parentAdapter) children() []*Namespace { return a.n.Children() }

func (a parentAdapter) Broadcast(ctx context.Context, p Packet, opts BroadcastOptions) error {
	var errs []error
	for _, c := range a.children() {
		errs = append(errs, c.adapter.Broadcast(ctx, p, opts))
	}
	return errors.Join(errs...)
}

func (a parentAdapter) BroadcastWithAck(ctx context.Context, p Packet, opts BroadcastOptions, clients func(int), ack func(Reply)) (int, error) {
	servers := 0
	var errs []error
	for _, c := range a.children() {
		n, err := c.adapter.BroadcastWithAck(ctx, p, opts, clients, ack)
		servers += n
		errs = append(errs, err)
	}
	return servers, errors.Join(errs...)
}

func (a parentAdapter) SocketsJoin(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.each(func(c *Namespace) error { return c.adapter.SocketsJoin(ctx, opts, rooms) })
}

func (a parentAdapter) SocketsLeave(ctx context.Context, opts BroadcastOptions, rooms []string) error {
	return a.each(func(c *Namespace) error { return c.adapter.SocketsLeave(ctx, opts, rooms) })
}

func (a parentAdapter) DisconnectSockets(ctx context.Context, opts BroadcastOptions, closeConn bool) error {
	return a.each(func(c *Namespace) error { return c.adapter.DisconnectSockets(ctx, opts, closeConn) })
}

func (a parentAdapter) FetchSockets(ctx context.Context, opts BroadcastOptions) ([]SocketInfo, error) {
	var all []SocketInfo
	err := a.each(func(c *Namespace) error {
		infos, err := c.adapter.FetchSockets(ctx, opts)
		all = append(all, infos...)
		return err
	})
	return all, err
}

// ServerSideEmit is refused: server-side events travel on named
// namespaces, a child's included.
func (a parentAdapter) ServerSideEmit(context.Context, Packet, bool) ([]Reply, error) {
	return nil, errors.New("rally: ServerSideEmit on a parent namespace; use a child namespace")
}

// Close does nothing: the children's adapters close with them.
func (a parentAdapter) Close() error { return nil }

func (a parentAdapter) each(fn func(*Namespace) error) error {
	var errs []error
	for _, c := range a.children() {
		errs = append(errs, fn(c))
	}
	return errors.Join(errs...)
}

var _ Adapter = parentAdapter{}

func (h *Hub) hasParents() bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.parents) > 0
}

func (n *Namespace) isRemoved() bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.removed
}

package sharded

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/cluster"
	"github.com/rallyhq/rally/redisadapter/internal/wire"
)

// adapter is the sharded adapter of one namespace: the cluster protocol
// over shard channels, and in the dynamic modes the subscriptions to the
// channels of its rooms.
type adapter struct {
	*cluster.Adapter
	n        *Node
	nsp      string
	channel  string // <prefix>#<nsp>#
	response string // <prefix>#<nsp>#<uid>#
	log      *slog.Logger
	ready    []<-chan struct{}

	pub     wire.Publisher // every message of the namespace, in order
	pubWarn wire.RateLog
	pubs    sync.WaitGroup // the publisher's drains

	mu       sync.Mutex
	pubsDone bool                // Close began: no new drain
	rooms    map[string]bool     // rooms whose channel is subscribed
	dirty    map[string]struct{} // rooms to look at again
	wake     chan struct{}       // something is dirty
	stop     chan struct{}       // closed by Close
	wg       sync.WaitGroup      // the rooms' goroutine
}

func newAdapter(n *Node, local *rally.LocalAdapter) *adapter {
	nsp := local.Namespace().Name()
	uid := cluster.NewID()
	channel := n.opts.ChannelPrefix + "#" + nsp + "#"
	a := &adapter{
		n:        n,
		nsp:      nsp,
		channel:  channel,
		response: channel + uid + "#",
		log:      n.log.With("namespace", nsp, "uid", uid),
		rooms:    make(map[string]bool),
		dirty:    make(map[string]struct{}),
		wake:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	a.pubWarn.Every = 10 * time.Second
	a.pub = wire.Publisher{Client: n.client, Local: local, Timeout: n.opts.RequestsTimeout, Sharded: true,
		Start:  a.goPublish,
		Warn:   func(msg string, args ...any) { a.pubWarn.Warn(a.log, msg, args...) },
		Failed: func(error) { n.subs.reload() },
		Closed: ErrClosed}
	a.Adapter = cluster.New(local, uid, &transport{a: a}, cluster.Options{Timeout: n.opts.RequestsTimeout, Logger: a.log})
	return a
}

// goPublish runs the publisher's drain on a goroutine Close waits for,
// and reports false once Close began.
func (a *adapter) goPublish(drain func()) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.pubsDone {
		return false
	}
	a.pubs.Add(1)
	go func() {
		defer a.pubs.Done()
		drain()
	}()
	return true
}

// start subscribes to the namespace and response channels and, in the
// dynamic modes, starts following the rooms.
func (a *adapter) start() {
	a.ready = []<-chan struct{}{a.n.subs.add(a.channel), a.n.subs.add(a.response)}
	if a.n.opts.SubscriptionMode == Static {
		return
	}
	for _, room := range a.Local().Rooms() {
		a.dirty[room] = struct{}{}
	}
	a.wake <- struct{}{}
	a.wg.Add(1)
	go a.followRooms()
}

// roomChanged marks room to be looked at again: a socket joined or left it.
func (a *adapter) roomChanged(room string) {
	if a.n.opts.SubscriptionMode == Static {
		return
	}
	a.mu.Lock()
	a.dirty[room] = struct{}{}
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// followRooms subscribes to the channel of each room that gets its first
// local socket and unsubscribes from those that lose their last, until
// Close. It learns of the changes from the Node's Observer or, while none
// is registered, by looking at every room once a second.
func (a *adapter) followRooms() {
	defer a.wg.Done()
	poll := time.NewTicker(roomPoll)
	defer poll.Stop()
	for {
		select {
		case <-a.stop:
			return
		case <-a.wake:
		case <-poll.C:
			if a.n.observed.Load() {
				continue
			}
			a.mu.Lock()
			for room := range a.rooms {
				a.dirty[room] = struct{}{}
			}
			a.mu.Unlock()
			for _, room := range a.Local().Rooms() {
				a.roomChanged(room)
			}
		}
		a.mu.Lock()
		dirty := a.dirty
		a.dirty = make(map[string]struct{})
		a.mu.Unlock()
		for room := range dirty {
			a.syncRoom(room)
		}
	}
}

// ownChannel reports whether room has a channel of its own (Node's
// shouldUseASeparateNamespace): in Dynamic mode a room that is not the id
// of a socket, in DynamicPrivate mode every room.
func (a *adapter) ownChannel(room string) bool {
	switch a.n.opts.SubscriptionMode {
	case DynamicPrivate:
		return true
	case Dynamic:
		return a.Local().Namespace().Socket(room) == nil
	}
	return false
}

// syncRoom subscribes to room's channel or unsubscribes from it, as the
// room now has local sockets or not.
func (a *adapter) syncRoom(room string) {
	a.mu.Lock()
	subscribed := a.rooms[room]
	a.mu.Unlock()
	channel := a.channel + room + "#"
	switch want := a.Local().HasRoom(room); {
	case want && !subscribed:
		if !a.ownChannel(room) {
			return
		}
		a.mu.Lock()
		a.rooms[room] = true
		a.mu.Unlock()
		a.n.route(channel, a)
		a.n.subs.add(channel)
	case !want && subscribed:
		a.mu.Lock()
		delete(a.rooms, room)
		a.mu.Unlock()
		a.n.route(channel, nil)
		ctx, cancel := context.WithTimeout(context.Background(), a.n.opts.RequestsTimeout)
		a.n.subs.remove(ctx, channel)
		cancel()
	}
}

// Close ends the adapter's subscriptions and, with the last adapter of the
// Node, waits for the subscriber's goroutines.
func (a *adapter) Close() error {
	known, last := a.n.forget(a)
	if !known {
		err := a.Adapter.Close()
		a.mu.Lock()
		a.pubsDone = true
		a.mu.Unlock()
		a.waitPublishes()
		return err
	}
	close(a.stop)
	a.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), a.n.opts.RequestsTimeout)
	defer cancel()
	channels := []string{a.channel, a.response}
	a.mu.Lock()
	for room := range a.rooms {
		channels = append(channels, a.channel+room+"#")
	}
	a.rooms = nil
	a.mu.Unlock()
	for _, c := range channels {
		a.n.subs.remove(ctx, c)
	}
	err := a.Adapter.Close()
	a.mu.Lock()
	a.pubsDone = true
	a.mu.Unlock()
	a.waitPublishes()
	if last {
		a.n.subs.wait()
	}
	return err
}

// waitPublishes waits, for at most the requests timeout, for what is
// being published.
func (a *adapter) waitPublishes() {
	done := make(chan struct{})
	go func() {
		a.pubs.Wait()
		close(done)
	}()
	timer := time.NewTimer(a.n.opts.RequestsTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		a.log.Warn("redisadapter/sharded: closing without waiting longer for broadcasts to be published")
	}
}

// transport publishes a namespace's messages as Node's sharded adapter
// does: SPUBLISH on the namespace's channel, or on a room's for a
// broadcast without ack to one room in the dynamic modes, and responses on
// the requester's channel.
type transport struct{ a *adapter }

// channelOf is Node's computeChannel.
func (t *transport) channelOf(m *cluster.Message) string {
	a := t.a
	if m.Type != cluster.Broadcast || m.HasRequestID() {
		return a.channel // the acks are counted per server of the namespace
	}
	o, _ := wire.GetMap(m.Data, "opts")
	v, _ := o.Get("rooms")
	rooms, ok := v.([]string) // as this server built it
	if !ok {
		rooms = wire.GetRooms(o, "rooms")
	}
	if len(rooms) != 1 {
		return a.channel
	}
	switch a.n.opts.SubscriptionMode {
	case DynamicPrivate:
		return a.channel + rooms[0] + "#"
	case Dynamic:
		if len(rooms[0]) != 20 { // not what a socket id looks like
			return a.channel + rooms[0] + "#"
		}
	}
	return a.channel
}

func (t *transport) Publish(ctx context.Context, m *cluster.Message) (string, error) {
	payload, err := encode(m)
	if err != nil {
		return "", err
	}
	return "", t.publish(ctx, t.channelOf(m), payload)
}

// Send queues a broadcast behind what is being published, without waiting.
func (t *transport) Send(m *cluster.Message) error {
	payload, err := encode(m)
	if err != nil {
		return err
	}
	return t.a.pub.Send(t.channelOf(m), payload)
}

// publish SPUBLISHes payload behind what is queued and waits for it (the
// cluster adapter reports it). After a failure the cluster client reads
// the slot map again (go-redis does on MOVED, not on a node that times
// out), so that the next publishes find a promoted replica: see
// newAdapter.
func (t *transport) publish(ctx context.Context, channel string, payload []byte) error {
	return t.a.pub.Publish(ctx, channel, payload, false)
}

func (t *transport) PublishResponse(ctx context.Context, requester string, m *cluster.Message) error {
	payload, err := encode(m)
	if err != nil {
		return err
	}
	return t.publish(ctx, t.a.channel+requester+"#", payload)
}

func (t *transport) ServerCount(ctx context.Context) (int, error) {
	return shardNumSub(ctx, t.a.n.client, t.a.channel)
}

// encode writes m as Node's sharded adapter does: MessagePack when it is
// of a type that may carry binary values and carries some, JSON otherwise.
func encode(m *cluster.Message) ([]byte, error) {
	switch m.Type {
	case cluster.Broadcast, cluster.BroadcastAck, cluster.FetchSocketsResponse, cluster.ServerSideEmit, cluster.ServerSideEmitResponse:
		if wire.HasBinary(m.Data) {
			return m.Marshal()
		}
	}
	return m.MarshalJSON()
}

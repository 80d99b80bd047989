package rally_test

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

// cluster joins hubs in one process through the Adapter interface: each
// operation is applied by every member's LocalAdapter, as an adapter that
// spans servers does over the network.
type cluster struct {
	mu      sync.Mutex
	members map[string][]*rally.LocalAdapter // by namespace
}

type clusterAdapter struct {
	c     *cluster
	local *rally.LocalAdapter
}

func (c *cluster) adapter(local *rally.LocalAdapter) rally.Adapter {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members == nil {
		c.members = make(map[string][]*rally.LocalAdapter)
	}
	name := local.Namespace().Name()
	c.members[name] = append(c.members[name], local)
	return &clusterAdapter{c: c, local: local}
}

// targets returns the local adapters an operation reaches.
func (a *clusterAdapter) targets(opts rally.BroadcastOptions) []*rally.LocalAdapter {
	if opts.Local {
		return []*rally.LocalAdapter{a.local}
	}
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	return slices.Clone(a.c.members[a.local.Namespace().Name()])
}

func (a *clusterAdapter) others() []*rally.LocalAdapter {
	var out []*rally.LocalAdapter
	for _, l := range a.targets(rally.BroadcastOptions{}) {
		if l != a.local {
			out = append(out, l)
		}
	}
	return out
}

func (a *clusterAdapter) Broadcast(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions) error {
	for _, l := range a.targets(opts) {
		l.Broadcast(ctx, p, opts)
	}
	return nil
}

func (a *clusterAdapter) BroadcastWithAck(ctx context.Context, p rally.Packet, opts rally.BroadcastOptions, clients func(int), ack func(rally.Reply)) (int, error) {
	targets := a.targets(opts)
	for _, l := range targets {
		l.BroadcastWithAck(ctx, p, opts, clients, ack)
	}
	return len(targets), nil
}

func (a *clusterAdapter) SocketsJoin(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	for _, l := range a.targets(opts) {
		l.SocketsJoin(ctx, opts, rooms)
	}
	return nil
}

func (a *clusterAdapter) SocketsLeave(ctx context.Context, opts rally.BroadcastOptions, rooms []string) error {
	for _, l := range a.targets(opts) {
		l.SocketsLeave(ctx, opts, rooms)
	}
	return nil
}

func (a *clusterAdapter) DisconnectSockets(ctx context.Context, opts rally.BroadcastOptions, closeConn bool) error {
	for _, l := range a.targets(opts) {
		l.DisconnectSockets(ctx, opts, closeConn)
	}
	return nil
}

func (a *clusterAdapter) FetchSockets(ctx context.Context, opts rally.BroadcastOptions) ([]rally.SocketInfo, error) {
	var out []rally.SocketInfo
	for _, l := range a.targets(opts) {
		infos, _ := l.FetchSockets(ctx, opts)
		out = append(out, infos...)
	}
	return out, nil
}

func (a *clusterAdapter) ServerSideEmit(ctx context.Context, p rally.Packet, ack bool) ([]rally.Reply, error) {
	var replies []rally.Reply
	for _, l := range a.others() {
		results, err := l.ServerEvent(p)
		if err != nil {
			return replies, err
		}
		r, err := rally.ReplyOf(results...)
		if err != nil {
			return replies, err
		}
		replies = append(replies, r)
	}
	if !ack {
		return nil, nil
	}
	return replies, nil
}

func (a *clusterAdapter) Close() error { return nil }

func TestAdapterSpansHubs(t *testing.T) {
	var c cluster
	hubs := make([]*rally.Hub, 2)
	servers := make([]*sockettest.Server, 2)
	for i := range hubs {
		hubs[i] = rally.NewHub(&rally.Options{Adapter: c.adapter})
		hubs[i].On("join", func(s *rally.Socket, room string) { s.Join(room) })
		hubs[i].OnServerEvent("whoami", func(greeting string) (string, int) { return greeting + " from", i })
		servers[i] = sockettest.NewServer(t, hubs[i])
	}
	var members []member
	for _, srv := range servers {
		c := srv.Socket(t, "/", nil)
		c.On("question", func() string { return "answer " + c.ID() })
		m := member{c: c, events: sockettest.Record(c)}
		srv.Connect(t, c)
		members = append(members, m)
	}
	a, b := members[0], members[1]
	b.c.EmitWithAck(ctx5s(t), "join", "blue")

	// A broadcast on one hub reaches the clients of both.
	hubs[0].Emit("news", "all")
	a.events.Wait(t, "news")
	b.events.Wait(t, "news")
	hubs[0].To("blue").Emit("news", "blue")
	var got string
	b.events.Expect(t, "news", &got)
	if got != "blue" {
		t.Fatalf("room broadcast across hubs: %q", got)
	}

	// Acks are collected from every hub's clients.
	replies, err := hubs[1].EmitWithAck(ctx5s(t), "question")
	if err != nil || len(replies) != 2 {
		t.Fatalf("acks across hubs: %d %v", len(replies), err)
	}
	var answers []string
	for _, r := range replies {
		var s string
		r.Decode(&s)
		answers = append(answers, s)
	}
	sort.Strings(answers)
	want := []string{"answer " + a.c.ID(), "answer " + b.c.ID()}
	sort.Strings(want)
	if !slices.Equal(answers, want) {
		t.Fatalf("answers %v, want %v", answers, want)
	}

	// Fetch, join and disconnect reach sockets of the other hub.
	socks, err := hubs[0].In("blue").FetchSockets(ctx5s(t))
	if err != nil || len(socks) != 1 || socks[0].ID != b.c.ID() {
		t.Fatalf("fetch across hubs: %v %v", socks, err)
	}
	if err := socks[0].Join("red"); err != nil {
		t.Fatal(err)
	}
	if socks, _ := hubs[1].In("red").Local().FetchSockets(ctx5s(t)); len(socks) != 1 {
		t.Fatalf("remote join: %d", len(socks))
	}
	if socks, _ := hubs[0].In("red").Local().FetchSockets(ctx5s(t)); len(socks) != 0 {
		t.Fatalf("Local reached another hub: %d", len(socks))
	}

	// Server-side events reach the other hubs only.
	replies, err = hubs[0].ServerSideEmitWithAck(ctx5s(t), "whoami", "hello")
	var greeting string
	var index int
	if err != nil || len(replies) != 1 || replies[0].Decode(&greeting, &index) != nil || greeting != "hello from" || index != 1 {
		t.Fatalf("server side emit: %v %q %d %v", replies, greeting, index, err)
	}
	if _, err := hubs[0].ServerSideEmitWithAck(ctx5s(t), "nobody listens"); !errors.Is(err, rally.ErrNoHandler) {
		t.Fatalf("unknown server event: %v", err)
	}

	if err := hubs[1].In(a.c.ID()).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	<-a.c.Done()
}

package redisadapter_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter/sharded"
	"github.com/redis/go-redis/v9"
)

// arrivals records when the ticks of one sender reached one client.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
	seqs  map[int]bool
}

func (a *arrivals) record(n int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.seqs == nil {
		a.seqs = make(map[int]bool)
	}
	a.times = append(a.times, time.Now())
	a.seqs[n] = true
}

// after reports whether a tick arrived after t.
func (a *arrivals) after(t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times) > 0 && a.times[len(a.times)-1].After(t)
}

// outage returns the longest time without ticks around kill, when the
// ticks came again after it (measured from kill), and how many of the
// ticks numbered first to last never arrived.
func (a *arrivals) outage(kill time.Time, first, last int) (silent, resumed time.Duration, lost int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := 1; i < len(a.times); i++ {
		if a.times[i].Before(kill) {
			continue
		}
		if d := a.times[i].Sub(a.times[i-1]); d > silent {
			silent, resumed = d, a.times[i].Sub(kill)
		}
	}
	for n := first; n <= last; n++ {
		if !a.seqs[n] {
			lost++
		}
	}
	return silent, resumed, lost
}

// span returns the lowest and highest tick numbers received.
func (a *arrivals) span() (lo, hi int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	lo, hi = -1, -1
	for n := range a.seqs {
		if lo < 0 || n < lo {
			lo = n
		}
		if n > hi {
			hi = n
		}
	}
	return lo, hi
}

// TestShardedFailover kills (SIGKILL) the master that serves the
// namespace's channel while two rally servers and a Node server
// (createShardedAdapter on a redis@4 cluster client) broadcast every 10ms,
// and checks that the broadcasts resume on the promoted replica in every
// direction (rally→rally, rally→Node, Node→rally), within a bound; it logs
// the silence and the losses it measured.
func TestShardedFailover(t *testing.T) {
	nodetest.Node(t)
	rc := startRedisCluster(t)
	ms := newShardedCluster(t, rc, 2, &shardedOptions{
		adapter: sharded.Options{RequestsTimeout: 2 * time.Second},
		setup: func(m *shmember) {
			m.hub.OnServerEvent("ping-srv", func(arg string) string { return "pong from rally: " + arg })
		},
	})
	ctx := ctxTimeout(t, 90*time.Second)
	victim := rc.masterOf(ctx, "socket.io#/#")
	// node-redis 4.7 subscribes to every shard channel it has on a node
	// again in one SSUBSCRIBE when it reconnects, which Redis refuses
	// (CROSSSLOT) when they are of several slots: its subscriptions are
	// then lost for good. The Node server used here has its response
	// channel on another master than the namespace's channel, so that it
	// can recover; a new one is started until that holds.
	var nd *shnode
	for try := 0; ; try++ {
		nd = startClusterNode(t, rc, "sharded", sharded.Dynamic, "socket.io", "node")
		if rc.masterOf(ctx, "socket.io#/#"+nd.UID+"#") != victim {
			break
		}
		if try == 10 {
			t.Fatalf("10 Node servers in a row have their response channel on %s", victim)
		}
		nd.p.Send(map[string]any{"op": "exit"})
		if err := nd.p.Exit(10 * time.Second); err != nil {
			t.Fatalf("the Node server did not exit cleanly: %v", err)
		}
	}
	waitShardSubs(t, ms[0].rdb, "socket.io#/#", 3)

	// rally 0 broadcasts, its ticks are watched on rally 1 and on Node;
	// Node broadcasts, its ticks are watched on rally 0.
	var rallyOnRally, rallyOnNode, nodeOnRally arrivals
	watch := func(c *client.Socket, from string, a *arrivals) {
		c.On("tick", func(sender string, n int) {
			if sender == from {
				a.record(n)
			}
		})
	}
	onRally0 := ms[0].dial(t, nil)
	onRally1 := ms[1].dial(t, nil)
	goOnNode := client.New(nd.URL, nil)
	t.Cleanup(func() { goOnNode.Close() })
	watch(onRally1.c, "rally", &rallyOnRally)
	watch(goOnNode, "rally", &rallyOnNode)
	watch(onRally0.c, "node", &nodeOnRally)
	if err := goOnNode.Connect(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var sent int
	var emits sync.WaitGroup
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				sent = n
				return
			case <-tick.C:
			}
			// A publish may wait while the cluster fails over: the
			// next ticks do not wait for it.
			emits.Go(func() { ms[0].hub.Emit("tick", "rally", n) })
		}
	}()
	nd.do("startTicks", map[string]any{"every": 10})
	start := time.Now()
	for _, a := range []*arrivals{&rallyOnRally, &rallyOnNode, &nodeOnRally} {
		eventually(t, 10*time.Second, "the ticks before the kill", func() bool { return a.after(start.Add(300 * time.Millisecond)) })
	}

	t.Logf("killing %s, the master of socket.io#/#", victim)
	killed := time.Now()
	rc.node(victim).Kill()

	const bound = 15 * time.Second
	directions := map[string]*arrivals{"rally→rally": &rallyOnRally, "rally→Node": &rallyOnNode, "Node→rally": &nodeOnRally}
	resumed := func(names ...string) []string {
		var waiting []string
		for _, name := range names {
			if !directions[name].after(killed.Add(10 * time.Millisecond)) {
				waiting = append(waiting, name)
			}
		}
		return waiting
	}
	// rally recovers on the promoted replica by itself.
	eventually(t, bound, "rally→rally after the kill", func() bool { return len(resumed("rally→rally")) == 0 })
	t.Logf("rally→rally delivering again %v after the kill", time.Since(killed).Round(time.Millisecond))
	// node-redis 4.7 keeps reconnecting to the dead master and only reads
	// the slot map again on a MOVED reply: the killed node is restarted,
	// as a supervisor would, rejoins as a replica, and answers MOVED.
	promoted := time.Now()
	eventually(t, bound, "the promotion of the replica", func() bool { return !rc.masterAddrs(ctx)[victim] })
	t.Logf("replica promoted %v after the kill", time.Since(killed).Round(time.Millisecond))
	if waiting := resumed("rally→Node", "Node→rally"); len(waiting) > 0 {
		time.Sleep(time.Second)
		if waiting = resumed(waiting...); len(waiting) > 0 {
			t.Logf("%q not delivering %v after the promotion: restarting %s", waiting, time.Since(promoted).Round(time.Millisecond), victim)
			rc.node(victim).Restart(t)
		}
	}
	deadline := time.Now().Add(bound)
	for {
		waiting := resumed("rally→Node", "Node→rally")
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var errs []string
			for _, l := range nd.p.Lines() {
				if l.Event == "redis-error" {
					errs = append(errs, l.Text("error"))
				}
			}
			t.Fatalf("no broadcast delivered within %v of the kill: %q (Node's last Redis errors: %q)", bound, waiting, errs[max(0, len(errs)-5):])
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Wait for every direction to be past its outage, then stop.
	resumedAll := time.Now()
	time.Sleep(time.Second)
	for name, a := range directions {
		if !a.after(resumedAll.Add(500 * time.Millisecond)) {
			t.Fatalf("%s: the broadcasts did not go on after the failover", name)
		}
	}
	close(stop)
	<-ticking
	emits.Wait()
	nd.do("stopTicks", nil)
	time.Sleep(300 * time.Millisecond) // the last ticks in flight

	if now := rc.masterOf(ctx, "socket.io#/#"); now == victim {
		t.Fatalf("%s still serves the namespace's channel", victim)
	} else {
		t.Logf("promoted replica: %s", now)
	}
	for name, a := range directions {
		lo, hi := a.span()
		if name != "Node→rally" {
			lo, hi = 0, sent-1
		}
		silent, resumed, lost := a.outage(killed, lo, hi)
		t.Logf("%s: silent for %v, delivering again %v after the kill; %d of ticks %d..%d lost",
			name, silent.Round(time.Millisecond), resumed.Round(time.Millisecond), lost, lo, hi)
		if resumed > bound || resumed <= 0 {
			t.Errorf("%s: delivering again %v after the kill, want (0, %v]", name, resumed, bound)
		}
	}

	// Where the subscribers of the namespace's channel are now, per node.
	var where []string
	for _, n := range rc.live() {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		m, err := c.PubSubShardNumSub(ctx, "socket.io#/#").Result()
		role, _ := c.Do(ctx, "ROLE").Slice()
		c.Close()
		if err == nil && len(role) > 0 {
			where = append(where, fmt.Sprintf("%s (%v): %d", n.Addr, role[0], m["socket.io#/#"]))
		}
	}
	t.Logf("subscribers of socket.io#/# per node: %s", strings.Join(where, ", "))

	// Requests between the rally servers work again: both counted on the
	// masters, and answering.
	// Requests work again: the rally servers are counted (Node too when
	// the cluster client already knows the replica it subscribed on), and
	// every server counted answers.
	var count int
	eventually(t, 10*time.Second, "the rally servers counted after the failover", func() bool {
		n, err := ms[1].node.ServerCount(ctx, "/")
		count = n
		return err == nil && n >= 2
	})
	got, err := ms[1].hub.ServerSideEmitWithAck(ctx, "ping-srv", "after")
	var answers []string
	for _, r := range got {
		var s string
		r.Decode(&s)
		answers = append(answers, s)
	}
	t.Logf("servers counted after the failover: %d; answers %q", count, answers)
	if err != nil || len(answers) != count-1 || !slices.Contains(answers, "pong from rally: after") {
		t.Fatalf("a server-side emit after the failover: %q, %v (%d servers counted)", answers, err, count)
	}
	if lines := ms[0].logs.Lines("subscribed again"); len(lines) == 0 {
		t.Errorf("rally 0 did not log its subscriptions restored: %q", ms[0].logs.All())
	}
}

// TestShardedFrozenMaster suspends (SIGSTOP) the master that serves the
// namespace's channel while a rally server broadcasts every 10ms: its
// connections stay open and silent, so only the adapter's ping (after 3s
// without messages, answered within 3s) finds out; the broadcasts resume
// on the promoted replica within a bound.
func TestShardedFrozenMaster(t *testing.T) {
	rc := startRedisCluster(t)
	ms := newShardedCluster(t, rc, 2, &shardedOptions{adapter: sharded.Options{RequestsTimeout: 2 * time.Second}})
	var ticks arrivals
	recv := ms[1].dial(t, nil)
	recv.c.On("tick", func(_ string, n int) { ticks.record(n) })
	stop := make(chan struct{})
	var emits sync.WaitGroup
	var sent int
	ticking := make(chan struct{})
	go func() {
		defer close(ticking)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				sent = n
				return
			case <-tick.C:
			}
			emits.Go(func() { ms[0].hub.Emit("tick", "rally", n) })
		}
	}()
	began := time.Now()
	eventually(t, 10*time.Second, "the ticks before the freeze", func() bool { return ticks.after(began.Add(200 * time.Millisecond)) })

	ctx := ctxTimeout(t, 60*time.Second)
	victim := rc.masterOf(ctx, "socket.io#/#")
	frozen := time.Now()
	rc.node(victim).Freeze()
	t.Logf("froze %s, the master of socket.io#/#", victim)
	const bound = 20 * time.Second
	eventually(t, bound, "the ticks after the freeze", func() bool { return ticks.after(frozen.Add(10 * time.Millisecond)) })
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-ticking
	emits.Wait()
	time.Sleep(300 * time.Millisecond)
	silent, resumed, lost := ticks.outage(frozen, 0, sent-1)
	t.Logf("silent for %v, delivering again %v after the freeze; %d of %d ticks lost",
		silent.Round(time.Millisecond), resumed.Round(time.Millisecond), lost, sent)
	if len(ms[1].logs.Lines("shard subscription lost")) == 0 {
		t.Errorf("the receiving server did not log the lost subscription: %q", ms[1].logs.All())
	}
}

package redisadapter_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisCluster is a Redis Cluster of 3 masters and 3 replicas, each a
// redis-server process on free loopback ports (client and bus), without
// persistence, created with redis-cli --cluster create and stopped when
// the test ends.
type redisCluster struct {
	t     testing.TB
	nodes []*clusterNode
}

// clusterNode is one redis-server of a redisCluster.
type clusterNode struct {
	Addr          string
	dir           string
	out           *lockedBuilder
	bin           string
	port, busPort int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// clusterNodeTimeout is the nodes' cluster-node-timeout: how long a master
// may stay silent before its replica takes over.
const clusterNodeTimeout = 1000 * time.Millisecond

// startRedisCluster starts a Redis Cluster for the test and waits until
// every node reports cluster_state:ok and every replica is in sync.
// Without redis-server or redis-cli the test is skipped, or fails when CI
// is "true".
func startRedisCluster(t testing.TB) *redisCluster {
	t.Helper()
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		msg := "redis-server or redis-cli not found in PATH; install them (Debian: apt-get install -y redis-server)"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: the Redis tests must not be skipped)", msg)
		}
		t.Skip(msg)
	}
	root := t.TempDir()
	c := &redisCluster{t: t}
	t.Cleanup(c.stop) // before the removal of root
	for i := range 6 {
		var err error
		for range 5 {
			n := &clusterNode{dir: filepath.Join(root, strconv.Itoa(i)), out: new(lockedBuilder)}
			if err = n.launch(server, freePort(t), freePort(t)); err == nil {
				c.nodes = append(c.nodes, n)
				break
			}
		}
		if err != nil {
			t.Fatalf("starting cluster node %d: %v", i, err)
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	began := time.Now()
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	created := time.Since(began)
	c.waitHealthy(30 * time.Second)
	t.Logf("Redis Cluster %v: created in %v, healthy %v later", c.Addrs(), created.Round(time.Millisecond), (time.Since(began) - created).Round(time.Millisecond))
	return c
}

// launch starts a cluster-enabled redis-server and waits until it
// answers PING.
func (n *clusterNode) launch(bin string, port, busPort int) error {
	n.bin, n.port, n.busPort = bin, port, busPort
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	n.Addr = "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--cluster-port", strconv.Itoa(busPort),
		"--bind", "127.0.0.1", "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(n.dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
		"--repl-diskless-sync-delay", "0", "--save", "", "--appendonly", "no", "--dir", n.dir, "--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = n.out, n.out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v: %s", err, n.out.String())
		default:
		}
		if ping(n.Addr) == nil {
			n.mu.Lock()
			n.cmd, n.exited = cmd, exited
			n.mu.Unlock()
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Kill()
	<-exited
	return fmt.Errorf("redis-server did not answer within 10s: %s", n.out.String())
}

// halt stops the node with sig (SIGKILL after 5s) and waits for it.
func (n *clusterNode) halt(sig syscall.Signal) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.cmd, n.exited = nil, nil
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Kill stops the node at once (SIGKILL), as a crash would.
func (n *clusterNode) Kill() { n.halt(syscall.SIGKILL) }

// Freeze suspends the node (SIGSTOP): its connections stay open and
// silent, as those of a hung host; the node is killed when the test ends.
func (n *clusterNode) Freeze() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Restart starts a stopped node again, on its ports and with its cluster
// configuration: a former master rejoins as a replica of the node that
// took its slots.
func (n *clusterNode) Restart(t testing.TB) {
	t.Helper()
	if err := n.launch(n.bin, n.port, n.busPort); err != nil {
		t.Fatalf("restarting cluster node %s: %v", n.Addr, err)
	}
}

func (c *redisCluster) stop() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() {
			n.mu.Lock()
			if n.cmd != nil {
				n.cmd.Process.Signal(syscall.SIGCONT) // a frozen node takes SIGTERM then
			}
			n.mu.Unlock()
			n.halt(syscall.SIGTERM)
		})
	}
	wg.Wait()
}

// Addrs returns the addresses of the nodes, masters and replicas.
func (c *redisCluster) Addrs() []string {
	out := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.Addr
	}
	return out
}

// URLs returns the nodes' redis:// URLs, comma-separated.
func (c *redisCluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = "redis://" + n.Addr
	}
	return strings.Join(urls, ",")
}

// Client returns a cluster client of the cluster, closed when the test
// ends.
func (c *redisCluster) Client(t testing.TB) *redis.ClusterClient {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { cc.Close() })
	return cc
}

// info runs CLUSTER INFO or INFO <section> on one node.
func nodeInfo(ctx context.Context, addr string, cluster bool, section string) (string, error) {
	rc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rc.Close()
	if cluster {
		return rc.ClusterInfo(ctx).Result()
	}
	return rc.Info(ctx, section).Result()
}

// waitHealthy waits until every live node reports cluster_state:ok with
// all slots served, and every live replica's link to its master is up.
func (c *redisCluster) waitHealthy(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok := true
		for _, n := range c.live() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			ci, err := nodeInfo(ctx, n.Addr, true, "")
			var repl string
			if err == nil {
				repl, err = nodeInfo(ctx, n.Addr, false, "replication")
			}
			cancel()
			switch {
			case err != nil:
				last = fmt.Sprintf("%s: %v", n.Addr, err)
			case !strings.Contains(ci, "cluster_state:ok") || !strings.Contains(ci, "cluster_slots_ok:16384"):
				last = fmt.Sprintf("%s: %s", n.Addr, ci)
			case strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up"):
				last = fmt.Sprintf("%s: replica not in sync: %s", n.Addr, repl)
			default:
				continue
			}
			ok = false
			break
		}
		if ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("the Redis Cluster is not healthy after %v: %s", timeout, last)
}

// waitReplicasListed waits until every node's CLUSTER SLOTS lists a
// replica for every slot range, so that the cluster clients created then
// know every replica (go-redis reads the slot map again only every 10s).
// The replicas are listed seconds after they are in sync.
func (c *redisCluster) waitReplicasListed(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range c.nodes {
		for {
			rc := redis.NewClient(&redis.Options{Addr: n.Addr})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			slots, err := rc.ClusterSlots(ctx).Result()
			cancel()
			rc.Close()
			listed := err == nil && len(slots) > 0
			for _, s := range slots {
				listed = listed && len(s.Nodes) == 2
			}
			if listed {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s does not list a replica per slot range after %v: %v %v", n.Addr, timeout, slots, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// live returns the nodes that run.
func (c *redisCluster) live() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		n.mu.Lock()
		if n.cmd != nil {
			out = append(out, n)
		}
		n.mu.Unlock()
	}
	return out
}

// node returns the node at addr.
func (c *redisCluster) node(addr string) *clusterNode {
	c.t.Helper()
	for _, n := range c.nodes {
		if n.Addr == addr {
			return n
		}
	}
	c.t.Fatalf("no cluster node at %s", addr)
	return nil
}

// masterOf returns the address of the master that serves key's slot (a
// shard channel's slot is its name's), as the given node reports it.
func (c *redisCluster) masterOf(ctx context.Context, key string) string {
	c.t.Helper()
	cc := c.Client(c.t)
	m, err := cc.MasterForKey(ctx, key)
	if err != nil {
		c.t.Fatalf("finding the master of %q: %v", key, err)
	}
	return m.Options().Addr
}

// masterAddrs returns the addresses of the masters as a live node reports
// them (CLUSTER SLOTS).
func (c *redisCluster) masterAddrs(ctx context.Context) map[string]bool {
	c.t.Helper()
	for _, n := range c.live() {
		rc := redis.NewClient(&redis.Options{Addr: n.Addr})
		slots, err := rc.ClusterSlots(ctx).Result()
		rc.Close()
		if err != nil {
			continue
		}
		out := make(map[string]bool)
		for _, s := range slots {
			out[s.Nodes[0].Addr] = true
		}
		return out
	}
	c.t.Fatal("no live node answers CLUSTER SLOTS")
	return nil
}

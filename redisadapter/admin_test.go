package redisadapter_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/admin"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/sockettest"
)

// TestAdminAcrossServers instruments two rally servers that share Redis:
// the admin UI, connected to the first, sees both servers' stats and the
// sockets of the second, and its commands reach them.
func TestAdminAcrossServers(t *testing.T) {
	r := startRedis(t)
	var insts []*admin.Instrumentation
	ms := newCluster(t, r, 2, &clusterOptions{setup: func(m *member) {
		inst, err := admin.Instrument(m.hub, &admin.Options{NoAuth: true, ServerID: fmt.Sprintf("server-%d", m.i)})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
	}})
	for _, inst := range insts {
		t.Cleanup(inst.Close)
	}
	waitCluster(t, ms, 2, "/admin")
	user := ms[1].dial(t, nil)
	user.join(t, "room-b")

	ui := ms[0].srv.Socket(t, "/admin", &client.Options{DisableReconnection: true})
	var mu sync.Mutex
	servers := map[string]bool{}
	ui.On("server_stats", func(st struct {
		ServerID string `json:"serverId"`
	}) {
		mu.Lock()
		servers[st.ServerID] = true
		mu.Unlock()
	})
	rec := sockettest.Record(ui)
	ms[0].srv.Connect(t, ui)

	var all []struct {
		ID    string   `json:"id"`
		Nsp   string   `json:"nsp"`
		Rooms []string `json:"rooms"`
	}
	rec.Expect(t, "all_sockets", &all)
	i := slices.IndexFunc(all, func(s struct {
		ID    string   `json:"id"`
		Nsp   string   `json:"nsp"`
		Rooms []string `json:"rooms"`
	}) bool {
		return s.ID == user.c.ID()
	})
	if i < 0 || all[i].Nsp != "/" || !slices.Contains(all[i].Rooms, "room-b") {
		t.Fatalf("the other server's socket %s in all_sockets: %+v", user.c.ID(), all)
	}
	eventually(t, 10*time.Second, "server_stats from both servers", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return servers["server-0"] && servers["server-1"]
	})

	disconnected := make(chan string, 1)
	ms[1].hub.OnDisconnect(func(s *rally.Socket, reason string) { disconnected <- reason })
	ui.Emit("_disconnect", "/", false, user.c.ID())
	select {
	case reason := <-disconnected:
		if reason != rally.ReasonServerNamespaceDisconnect {
			t.Errorf("the socket left for %q", reason)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the UI's disconnect did not reach the other server's socket")
	}
}

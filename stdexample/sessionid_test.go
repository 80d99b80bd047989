package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/rallyhq/rally/stdexample/chat"
)

// TestSessionIDsAreUUIDs: the app names engine sessions with random
// UUIDs (rally.Options.GenerateID), on both transports; a session works
// under its UUID, and the socket id in the CONNECT answer is another id.
func TestSessionIDsAreUUIDs(t *testing.T) {
	srv, _ := startApp(t, chat.Config{})
	base := srv.URL + "/socket.io/?EIO=4&transport="

	// open decodes an open packet's sid as a version 4 UUID.
	open := func(t *testing.T, packet string) string {
		t.Helper()
		var hs struct{ SID string }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(packet, "0")), &hs); err != nil {
			t.Fatalf("open packet %q: %v", packet, err)
		}
		id, err := uuid.Parse(hs.SID)
		if err != nil || id.Version() != 4 || id.String() != hs.SID {
			t.Fatalf("sid %q is not a random UUID in canonical form (%v)", hs.SID, err)
		}
		return hs.SID
	}
	do := func(t *testing.T, method, url, body string) string {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, url, res.StatusCode, b)
		}
		return string(b)
	}
	// connected checks the answer to CONNECT: the socket's id is not the
	// engine's.
	connected := func(t *testing.T, answer, sid string) {
		t.Helper()
		var ack struct{ SID string }
		if !strings.HasPrefix(answer, "40") || json.Unmarshal([]byte(answer[2:]), &ack) != nil || ack.SID == "" || ack.SID == sid {
			t.Fatalf("CONNECT answered %q; want a socket id other than the session's %s", answer, sid)
		}
	}

	seen := map[string]bool{}
	t.Run("polling", func(t *testing.T) {
		for range 3 {
			sid := open(t, do(t, "GET", base+"polling", ""))
			if seen[sid] {
				t.Fatalf("sid %s twice", sid)
			}
			seen[sid] = true
			u := base + "polling&sid=" + sid
			if got := do(t, "POST", u, "40"); got != "ok" {
				t.Fatalf("POST CONNECT: %q", got)
			}
			payload := do(t, "GET", u, "")
			first, _, _ := strings.Cut(payload, "\x1e") // the greetings may follow
			connected(t, first, sid)
			do(t, "POST", u, "1") // close
		}
	})
	t.Run("websocket", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		_, packet, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		sid := open(t, string(packet))
		if seen[sid] {
			t.Fatalf("sid %s twice", sid)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("40")); err != nil {
			t.Fatal(err)
		}
		_, answer, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		connected(t, string(answer), sid)
	})
}

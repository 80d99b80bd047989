package rally_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
)

// TestInteropEmptyBinary sends new Uint8Array(0) from the official client
// (testdata/interop/emptybinary.js) in every transport mode: the handlers
// get a non-nil empty []byte, and what they send back, events and ack,
// reaches the client as an empty buffer, not null.
func TestInteropEmptyBinary(t *testing.T) {
	nodetest.Node(t)
	for _, mode := range interopModes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			testInteropEmptyBinary(t, mode)
		})
	}
}

func testInteropEmptyBinary(t *testing.T, mode string) {
	srv := startInterop(t, mode, nil, nil)
	got := make(chan string, 16) // what each handler got, described
	describe := func(ev string, v any) string {
		b, ok := v.([]byte)
		switch {
		case !ok:
			return fmt.Sprintf("%s: %#v", ev, v)
		case b == nil:
			return ev + ": nil []byte"
		default:
			return fmt.Sprintf("%s: []byte of %d bytes", ev, len(b))
		}
	}
	srv.hub.On("reflect", func(s *rally.Socket, b []byte) {
		got <- describe("reflect", b)
		s.Emit("reflect", b)
	})
	srv.hub.On("reflectAny", func(s *rally.Socket, args ...any) {
		var first any = "no argument"
		if len(args) > 0 {
			first = args[0]
		}
		got <- describe("reflectAny", first)
		s.Emit("reflectAny", args...)
	})
	srv.hub.On("ackEmpty", func(s *rally.Socket, b []byte) []byte {
		got <- describe("ackEmpty", b)
		return b
	})

	p := srv.node(t, "emptybinary.js")
	for round := 1; round <= 2; round++ {
		if round > 1 {
			p.Send(map[string]any{"op": "send", "round": round})
		}
		sending := waitEvent(t, p, "sending", map[string]any{"round": round})
		t.Logf("round %d sent over %s", round, sending.Text("transport"))
		for range 3 {
			if d := recv(t, got, fmt.Sprintf("round %d handlers", round)); !strings.HasSuffix(d, ": []byte of 0 bytes") {
				t.Errorf("round %d: handler got %s, want an empty []byte", round, d)
			}
		}
		for _, ev := range []string{"reflect", "reflectAny", "ackEmpty"} {
			l := waitEvent(t, p, "recv", map[string]any{"ev": ev, "round": round})
			kind, length := l.Text("kind"), l.Get("length")
			if (kind != "Buffer" && kind != "ArrayBuffer") || length != float64(0) {
				t.Errorf("round %d: %s came back to the client as %s (length %v), want an empty Buffer", round, ev, kind, length)
			}
		}
	}
}

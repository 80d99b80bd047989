package rally_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/sockettest"
)

// Compress(false) sends a message uncompressed on a connection that
// negotiated permessage-deflate: its frame has no RSV1 bit; the same
// message sent otherwise has.
func TestCompressFalse(t *testing.T) {
	hub := rally.NewHub(&rally.Options{Compression: true})
	big := strings.Repeat("compressible ", 200)
	hub.On("send", func(s *rally.Socket) {
		s.Emit("plain", big)
		s.Compress(false).Emit("raw", big)
		hub.All().Compress(false).Emit("all raw", big)
		hub.Emit("all", big)
	})
	srv := sockettest.NewServer(t, hub)
	nc, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req := "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover\r\n\r\n"
	nc.Write([]byte(req))
	br := bufio.NewReader(nc)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols || res.Header.Get("Sec-WebSocket-Extensions") == "" {
		t.Fatalf("handshake: %v %v", res, err)
	}
	// A client frame: FIN|text, masked (zero key), short payload.
	send := func(text string) {
		frame := append([]byte{0x81, 0x80 | byte(len(text)), 0, 0, 0, 0}, text...)
		nc.Write(frame)
	}
	// frame reads a server frame and returns its first byte and payload
	// length.
	frame := func() (byte, int) {
		var h [2]byte
		if _, err := br.Read(h[:1]); err != nil {
			t.Fatal(err)
		}
		h[1], _ = br.ReadByte()
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			b1, _ := br.ReadByte()
			b2, _ := br.ReadByte()
			n = int(b1)<<8 | int(b2)
		case 127:
			t.Fatal("unexpectedly large frame")
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
		return h[0], n
	}
	frame() // open packet
	send("40")
	frame() // CONNECT answer
	send(`42["send"]`)
	const rsv1 = 0x40
	for _, want := range []struct {
		name       string
		compressed bool
	}{{"plain", true}, {"raw", false}, {"all raw", false}, {"all", true}} {
		first, n := frame()
		if got := first&rsv1 != 0; got != want.compressed {
			t.Errorf("%s: compressed %v (%d bytes), want %v", want.name, got, n, want.compressed)
		}
	}
}

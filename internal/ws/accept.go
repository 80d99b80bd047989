package ws

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// AcceptOptions configures Accept.
type AcceptOptions struct {
	// MaxMessageSize bounds a received message, after decompression. A
	// larger one fails the connection with StatusMessageTooBig. Zero means
	// 1 MB.
	MaxMessageSize int64
	// Compression offers permessage-deflate (without context takeover) to
	// clients that ask for it.
	Compression bool
	// NoPoller keeps a goroutine reading each connection instead of the
	// process-wide poller.
	NoPoller bool
	// WriteTimeout fails a write that makes no progress for this long;
	// zero means no limit.
	WriteTimeout time.Duration
}

// websocketGUID is appended to the client's key to form the accept key
// (RFC 6455 §4.2.2).
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// Accept checks that r is a WebSocket opening handshake, takes over the
// connection and answers 101 Switching Protocols with the headers already
// set on w. A request that is not a valid handshake is answered with an
// HTTP error, and the error says why: 405 for a method other than GET, 426
// Upgrade Required with "Sec-WebSocket-Version: 13" when the Connection or
// Upgrade header does not ask for a websocket or the version is not 13
// (RFC 6455 §4.2.2), 400 for an invalid Sec-WebSocket-Key.
func Accept(w http.ResponseWriter, r *http.Request, opts AcceptOptions) (*Conn, error) {
	key, status, err := checkHandshake(r)
	if err != nil {
		if status == http.StatusUpgradeRequired {
			w.Header().Set("Connection", "Upgrade")
			w.Header().Set("Upgrade", "websocket")
			w.Header().Set("Sec-WebSocket-Version", "13")
		}
		http.Error(w, err.Error(), status)
		return nil, err
	}
	var ext string
	if opts.Compression {
		ext = negotiateDeflate(r.Header)
	}

	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		err = fmt.Errorf("websocket: take over the connection: %w", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return nil, err
	}
	nc.SetDeadline(time.Time{}) // the HTTP server's deadlines no longer apply

	resp := w.Header().Clone()
	resp.Set("Upgrade", "websocket")
	resp.Set("Connection", "Upgrade")
	resp.Set("Sec-WebSocket-Accept", acceptKey(key))
	if ext != "" {
		resp.Set("Sec-WebSocket-Extensions", ext)
	}
	bw := bufio.NewWriterSize(nc, 512)
	bw.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	resp.Write(bw)
	bw.WriteString("\r\n")
	if err := bw.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("websocket: write the handshake response: %w", err)
	}

	c := newConn(nc, opts, ext != "")
	if n := brw.Reader.Buffered(); n > 0 {
		// The client did not wait for the response.
		early, _ := brw.Reader.Peek(n)
		if err := c.rd.feed(early, (*queueSink)(c)); err != nil {
			c.fail(err) // reported after the messages before it
		}
	}
	return c, nil
}

// checkHandshake returns the client's key, or an HTTP status and an error
// saying what is wrong with the request.
func checkHandshake(r *http.Request) (key string, status int, err error) {
	switch {
	case r.Method != http.MethodGet:
		return "", http.StatusMethodNotAllowed, fmt.Errorf("websocket: handshake method is %s, not GET", r.Method)
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "", http.StatusUpgradeRequired, fmt.Errorf(`websocket: Connection header does not contain "upgrade"`)
	case !headerHasToken(r.Header, "Upgrade", "websocket"):
		return "", http.StatusUpgradeRequired, fmt.Errorf(`websocket: Upgrade header does not contain "websocket"`)
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "", http.StatusUpgradeRequired, fmt.Errorf("websocket: unsupported Sec-WebSocket-Version %q, want 13", r.Header.Get("Sec-WebSocket-Version"))
	}
	key = strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))
	if b, err := base64.StdEncoding.DecodeString(key); err != nil || len(b) != 16 {
		return "", http.StatusBadRequest, fmt.Errorf("websocket: invalid Sec-WebSocket-Key %q", key)
	}
	return key, 0, nil
}

// acceptKey derives Sec-WebSocket-Accept from the client's key.
func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// headerList returns the comma-separated elements of every field name in h.
func headerList(h http.Header, name string) []string {
	var out []string
	for _, v := range h.Values(name) {
		for e := range strings.SplitSeq(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// headerHasToken reports whether a comma-separated header contains token,
// ignoring case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, e := range headerList(h, name) {
		if strings.EqualFold(e, token) {
			return true
		}
	}
	return false
}

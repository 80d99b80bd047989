package pollclient

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// netWire is a wire on net/http: a Transport of its own limited to one
// keep-alive connection, and one request reused as long as the target
// stays the same.
type netWire struct {
	client *http.Client
	tr     *http.Transport

	mu     sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc // ends the request in flight (abort)

	req    *http.Request
	target string
	body   reusableBody
}

// reusableBody is a POST body that can be reset, so that a request is
// reused without allocating a new body.
type reusableBody struct{ bytes.Reader }

func (*reusableBody) Close() error { return nil }

func newNetWire(timeout time.Duration) *netWire {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxConnsPerHost:     1, // one connection per direction, reused
		MaxIdleConnsPerHost: 1,
		MaxIdleConns:        1,
		DisableCompression:  true,
		WriteBufferSize:     4096,
		ReadBufferSize:      4096,
	}
	w := &netWire{tr: tr, client: &http.Client{Transport: tr, Timeout: timeout}}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

func (w *netWire) do(method, url string, body, buf []byte) (int, []byte, error) {
	w.mu.Lock()
	if w.ctx.Err() != nil || w.req == nil || w.target != url || w.req.Method != method {
		if w.ctx.Err() != nil {
			w.ctx, w.cancel = context.WithCancel(context.Background())
		}
		var b io.Reader
		if method == http.MethodPost {
			b = &w.body
		}
		req, err := http.NewRequestWithContext(w.ctx, method, url, b)
		if err != nil {
			w.mu.Unlock()
			return 0, buf, err
		}
		if b != nil {
			req.Header.Set("Content-Type", contentType)
		}
		w.req, w.target = req, url
	}
	req := w.req
	w.mu.Unlock()
	if req.Method == http.MethodPost {
		w.body.Reset(body)
		req.ContentLength = int64(len(body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, buf, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > 0 && int64(cap(buf)-len(buf)) < resp.ContentLength {
		buf = append(make([]byte, 0, len(buf)+int(resp.ContentLength)), buf...)
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := resp.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return resp.StatusCode, buf, nil
		}
		if err != nil {
			return resp.StatusCode, buf, err
		}
	}
}

func (w *netWire) abort() {
	w.mu.Lock()
	w.cancel()
	w.mu.Unlock()
}

func (w *netWire) close() {
	w.abort()
	w.tr.CloseIdleConnections()
}

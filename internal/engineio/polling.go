package engineio

import (
	"bytes"
	"compress/gzip"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// pollState is the long-polling side of a session.
type pollState struct {
	get     chan struct{} // set while a GET waits; wakes it
	posting bool          // a POST is being handled
}

// handshakePolling opens a session on long-polling; the response carries
// the open packet.
func (srv *Server) handshakePolling(w http.ResponseWriter, r *http.Request) {
	s := srv.register(r, TransportPolling)
	if s == nil {
		srv.refuse(w, r, errBadRequest, errBadRequest.message)
		return
	}
	upgrades := []string{}
	if !srv.opts.DisableUpgrades && srv.enabled(TransportWebSocket) {
		upgrades = append(upgrades, TransportWebSocket)
	}
	srv.setCookie(w, s.id)
	srv.writePayload(w, r, s, []Frame{s.openPacket(upgrades)}, true)
	s.startHeartbeat()
	s.opened()
}

// servePolling serves a request of an existing polling session.
func (s *Session) servePolling(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		s.servePoll(w, r)
	case http.MethodPost:
		s.serveData(w, r)
	default:
		w.WriteHeader(http.StatusInternalServerError)
	}
}

// servePoll answers a GET with every queued packet, waiting until there is
// at least one.
func (s *Session) servePoll(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.poll.get != nil {
		// One GET at a time: the official server refuses the second and
		// closes the session; the first is answered with a close packet.
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		s.Abort(ReasonTransportError)
		return
	}
	if s.state == stateClosed {
		s.mu.Unlock()
		s.srv.refuse(w, r, errSessionUnknown, errSessionUnknown.message)
		return
	}
	wake := make(chan struct{}, 1)
	s.poll.get = wake
	for len(s.queue) == 0 && s.state != stateClosed && s.transport == TransportPolling {
		s.mu.Unlock()
		select {
		case <-wake:
		case <-r.Context().Done():
			s.mu.Lock()
			if s.poll.get == wake {
				s.poll.get = nil
			}
			s.mu.Unlock()
			s.Abort(ReasonTransportError)
			return
		}
		s.mu.Lock()
	}
	s.poll.get = nil
	var frames []Frame
	var size int64
	if s.transport != TransportPolling {
		frames = []Frame{noopFrame}
	} else {
		frames, size = s.queue, s.queuedBytes
		s.queue, s.queuedBytes = nil, 0
		s.writingBytes += size // until the response is written
	}
	closed := false
	if s.state == stateClosing {
		if last := frames[len(frames)-1]; isClose(last) {
			closed = true
		} else {
			s.queue = append(s.queue, closeFrame) // for the next poll
		}
	}
	s.mu.Unlock()

	err := s.srv.writePayload(w, r, s, frames, false)
	s.mu.Lock()
	s.wroteLocked(size)
	s.mu.Unlock()
	if err != nil && !closed {
		s.Abort(ReasonTransportError) // the client does not take its packets
	}
	if closed {
		s.Abort(ReasonForcedClose)
	}
}

func isClose(f Frame) bool { return !f.Binary && len(f.Data) == 1 && f.Data[0] == Close }

// serveData handles a POST: its body is a payload of packets from the client.
func (s *Session) serveData(w http.ResponseWriter, r *http.Request) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	binary := ct == "application/octet-stream"
	if binary && s.protocol != Protocol3 {
		w.WriteHeader(http.StatusBadRequest)
		s.Abort(ReasonTransportError)
		return
	}
	s.mu.Lock()
	if s.poll.posting {
		s.mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		s.Abort(ReasonTransportError)
		return
	}
	s.poll.posting = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.poll.posting = false
		s.mu.Unlock()
	}()

	limit := s.srv.opts.MaxPayload
	if r.ContentLength > limit {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		s.Abort(ReasonTransportError)
		return
	}
	if int64(len(body)) > limit {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	// While the events read wait to be handled, reading stops: the next
	// packet waits, and so does the response, which holds the client's
	// next POST back.
	stopped := false
	decode := DecodePayload
	if s.protocol == Protocol3 {
		decode = func(body []byte, fn func(Packet)) error { return DecodePayload3(body, binary, fn) }
	}
	err = decode(body, func(p Packet) {
		if stopped {
			return
		}
		if p.Type == Message && !s.waitReadable(r.Context()) {
			stopped = true
			return
		}
		// The packet is handled later: copy it out so that the body is
		// not kept for it.
		p.Data = bytes.Clone(p.Data)
		s.receive(p)
	})
	if stopped {
		if r.Context().Err() != nil {
			s.Abort(ReasonTransportError) // the client gave up on its POST
		}
		return // a closed session answers nothing more
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		s.Abort(ReasonParseError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Content-Length", "2")
	h.Set("Cache-Control", "no-store")
	s.srv.setHeaders(h, r, false)
	io.WriteString(w, "ok")
}

// compressThreshold is the payload size from which poll responses are
// gzipped for clients that accept it, as the official server does.
const compressThreshold = 1024

var gzipPool = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}

// writeChunk is how much of a poll response must go out within the write
// timeout.
const writeChunk = 64 << 10

// writePayload answers a poll of s with frames as one payload, the
// handshake's when initial is set, in the session's revision. With a write
// timeout, the response fails once a chunk of it takes longer than that to
// write.
func (srv *Server) writePayload(w http.ResponseWriter, r *http.Request, s *Session, frames []Frame, initial bool) error {
	stall := srv.opts.WriteTimeout
	var body []byte
	binary := false
	if s.protocol == Protocol3 {
		body, binary = AppendPayload3(nil, frames, s.b64)
	} else {
		body = AppendPayload(nil, frames)
	}
	h := w.Header()
	if binary {
		h.Set("Content-Type", "application/octet-stream")
	} else {
		h.Set("Content-Type", "text/plain; charset=UTF-8")
	}
	h.Set("Cache-Control", "no-store")
	if len(body) >= compressThreshold && acceptsGzip(r) {
		var buf bytes.Buffer
		zw := gzipPool.Get().(*gzip.Writer)
		zw.Reset(&buf)
		zw.Write(body)
		zw.Close()
		gzipPool.Put(zw)
		body = buf.Bytes()
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	srv.setHeaders(h, r, initial)
	rc := http.NewResponseController(w)
	for len(body) > 0 {
		n := min(len(body), writeChunk)
		if stall > 0 {
			rc.SetWriteDeadline(time.Now().Add(stall)) // unsupported by some wrappers: then none
		}
		if _, err := w.Write(body[:n]); err != nil {
			return err
		}
		body = body[n:]
	}
	if stall > 0 {
		rc.SetWriteDeadline(time.Time{})
	}
	return nil
}

// acceptsGzip reports whether the request's Accept-Encoding lists gzip
// without refusing it (q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

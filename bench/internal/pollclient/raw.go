package pollclient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// rawWire is a wire written straight on one keep-alive TCP connection:
// the request goes out in one write, the response is parsed from a read
// buffer (Content-Length or chunked bodies), and nothing but the
// connection itself and its buffers is allocated, once. A request made on
// a reused connection that the server had closed meanwhile (keep-alive
// timeout) is sent again on a new one.
type rawWire struct {
	addr    string
	timeout time.Duration

	mu   sync.Mutex
	nc   net.Conn // nil: not connected
	busy bool     // a request is in flight (abort closes nc)

	br   *bufio.Reader
	wbuf []byte
}

func newRawWire(addr string, timeout time.Duration) *rawWire {
	return &rawWire{addr: addr, timeout: timeout}
}

// errReusedClosed: the server had closed the kept-alive connection.
var errReusedClosed = errors.New("kept-alive connection closed by the server")

func (w *rawWire) do(method, target string, body, buf []byte) (int, []byte, error) {
	w.mu.Lock()
	w.busy = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.busy = false
		w.mu.Unlock()
	}()
	status, out, err := w.once(method, target, body, buf)
	if errors.Is(err, errReusedClosed) {
		status, out, err = w.once(method, target, body, buf)
	}
	return status, out, err
}

// once sends the request and reads the response on the current
// connection, or a new one.
func (w *rawWire) once(method, target string, body, buf []byte) (int, []byte, error) {
	reused := true
	w.mu.Lock()
	if w.nc == nil {
		reused = false
		nc, err := net.DialTimeout("tcp", w.addr, 10*time.Second)
		if err != nil {
			w.mu.Unlock()
			return 0, buf, err
		}
		w.nc = nc
		if w.br == nil {
			w.br = bufio.NewReaderSize(nc, 4096)
		} else {
			w.br.Reset(nc)
		}
	}
	nc := w.nc
	w.mu.Unlock()

	b := append(w.wbuf[:0], method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, w.addr...)
	b = append(b, "\r\n"...)
	if method == "POST" {
		b = append(b, "Content-Type: "+contentType+"\r\nContent-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	b = append(b, body...)
	w.wbuf = b
	nc.SetDeadline(time.Now().Add(w.timeout))
	if _, err := nc.Write(b); err != nil {
		w.drop()
		if reused {
			return 0, buf, errReusedClosed
		}
		return 0, buf, err
	}
	status, out, keep, err := w.readResponse(buf)
	if err != nil {
		w.drop()
		if reused && status == 0 && errors.Is(err, io.EOF) {
			return 0, buf, errReusedClosed
		}
		return status, out, err
	}
	if !keep {
		w.drop()
	}
	return status, out, nil
}

// readResponse reads a response's status line, headers and body, the
// body appended to buf; keep reports whether the connection may be used
// again.
func (w *rawWire) readResponse(buf []byte) (status int, out []byte, keep bool, err error) {
	line, err := w.br.ReadSlice('\n')
	if err != nil {
		return 0, buf, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, buf, false, fmt.Errorf("bad status line %q", line)
	}
	keep = line[7] == '1' // HTTP/1.1 keeps the connection by default
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, buf, false, fmt.Errorf("bad status line %q", line)
	}
	length, chunked := -1, false
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return status, buf, false, fmt.Errorf("reading headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return status, buf, false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.Contains(bytes.ToLower(value), []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			} else if bytes.EqualFold(value, []byte("keep-alive")) {
				keep = true
			}
		}
	}
	switch {
	case chunked:
		buf, err = w.readChunked(buf)
	case length >= 0:
		buf, err = readN(w.br, buf, length)
	default: // the body runs to the end of the connection
		keep = false
		for err == nil {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			var n int
			n, err = w.br.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
		}
		if err == io.EOF {
			err = nil
		}
	}
	return status, buf, keep, err
}

// readChunked appends a chunked body to buf.
func (w *rawWire) readChunked(buf []byte) ([]byte, error) {
	for {
		line, err := w.br.ReadSlice('\n')
		if err != nil {
			return buf, fmt.Errorf("reading a chunk size: %w", err)
		}
		size, _, _ := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 32)
		if err != nil || n < 0 {
			return buf, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				line, err := w.br.ReadSlice('\n')
				if err != nil {
					return buf, err
				}
				if len(bytes.TrimRight(line, "\r\n")) == 0 {
					return buf, nil
				}
			}
		}
		if buf, err = readN(w.br, buf, int(n)); err != nil {
			return buf, err
		}
		var crlf [2]byte
		if _, err := io.ReadFull(w.br, crlf[:]); err != nil {
			return buf, err
		}
	}
}

// readN appends exactly n bytes from r to buf.
func readN(r io.Reader, buf []byte, n int) ([]byte, error) {
	if cap(buf)-len(buf) < n {
		buf = append(make([]byte, 0, len(buf)+n), buf...)
	}
	_, err := io.ReadFull(r, buf[len(buf):len(buf)+n])
	return buf[:len(buf)+n], err
}

// drop closes the connection; the next request opens a new one.
func (w *rawWire) drop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.nc != nil {
		w.nc.Close()
		w.nc = nil
	}
}

func (w *rawWire) abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.busy && w.nc != nil {
		w.nc.Close() // the request in flight fails, and drops it
	}
}

func (w *rawWire) close() { w.drop() }

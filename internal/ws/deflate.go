package ws

import (
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"strings"
	"sync"
)

// permessage-deflate (RFC 7692) without context takeover on either side:
// every message is compressed on its own, so a connection keeps no
// compressor state between messages and pooled ones serve all connections.

// compressThreshold is the smallest message compressed; below it the
// deflate framing costs more than it saves.
const compressThreshold = 512

// deflateTail ends every compressed message and is left out on the wire.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// negotiateDeflate looks for a permessage-deflate offer that can be served
// without context takeover and returns the response extension, or "".
func negotiateDeflate(h http.Header) string {
	for _, offer := range headerList(h, "Sec-WebSocket-Extensions") {
		params := strings.Split(offer, ";")
		if strings.TrimSpace(params[0]) != "permessage-deflate" {
			continue
		}
		ok := true
		for _, p := range params[1:] {
			name, _, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch strings.TrimSpace(name) {
			case "client_no_context_takeover", "server_no_context_takeover", "client_max_window_bits":
				// The server compresses with the full window and
				// takes no context either way.
			default:
				// server_max_window_bits below 15 cannot be honoured
				// with compress/flate; unknown parameters refuse the
				// offer (RFC 7692 §5.1).
				ok = false
			}
		}
		if ok {
			return "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
		}
	}
	return ""
}

var flateReaders sync.Pool // of io.ReadCloser implementing flate.Resetter

// inflate decompresses one message, failing with StatusMessageTooBig past
// limit bytes.
func inflate(data []byte, limit int64) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(data), bytes.NewReader(deflateTail))
	fr, _ := flateReaders.Get().(io.ReadCloser)
	if fr == nil {
		fr = flate.NewReader(src)
	} else {
		fr.(flate.Resetter).Reset(src, nil)
	}
	defer flateReaders.Put(fr)
	var out bytes.Buffer
	n, err := out.ReadFrom(io.LimitReader(fr, limit+1))
	switch {
	case err != nil && err != io.ErrUnexpectedEOF:
		return nil, protocolError(StatusInvalidData, "invalid compressed message: %v", err)
	case n > limit:
		return nil, protocolError(StatusMessageTooBig, "message over %d bytes once decompressed", limit)
	}
	return out.Bytes(), nil
}

var flateWriters sync.Pool // of *flate.Writer

// deflate appends the compressed form of data, tail removed, to dst.
func deflate(dst, data []byte) []byte {
	buf := bytes.NewBuffer(dst)
	fw, _ := flateWriters.Get().(*flate.Writer)
	if fw == nil {
		fw, _ = flate.NewWriter(buf, flate.BestSpeed)
	} else {
		fw.Reset(buf)
	}
	fw.Write(data) // writes to a bytes.Buffer do not fail
	fw.Flush()
	flateWriters.Put(fw)
	return bytes.TrimSuffix(buf.Bytes(), deflateTail)
}

package ws

import (
	"bytes"
	"compress/flate"
	"io"
	"net/http"
	"slices"
	"strconv"
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

// deflateResponse answers an accepted permessage-deflate offer: neither
// side keeps context between messages. An offer's server_max_window_bits=15
// adds "; server_max_window_bits=15".
const deflateResponse = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// negotiateDeflate returns the response extension for the first
// permessage-deflate offer in h that the server accepts, or "" when it
// accepts none.
func negotiateDeflate(h http.Header) string {
	for _, offer := range headerList(h, "Sec-WebSocket-Extensions") {
		if resp, ok := acceptDeflateOffer(offer); ok {
			return resp
		}
	}
	return ""
}

// deflateOfferParams are the parameters a permessage-deflate offer may
// carry (RFC 7692 §7.1).
var deflateOfferParams = [...]string{
	"server_no_context_takeover",
	"client_no_context_takeover",
	"server_max_window_bits",
	"client_max_window_bits",
}

// acceptDeflateOffer returns the response to one extension offer, or false
// when it is not permessage-deflate or must be declined (RFC 7692 §7): a
// parameter unknown, given twice or with an invalid value, or one the
// server cannot honour.
func acceptDeflateOffer(offer string) (resp string, ok bool) {
	params := strings.Split(offer, ";")
	if strings.TrimSpace(params[0]) != "permessage-deflate" {
		return "", false
	}
	resp = deflateResponse
	var seen [len(deflateOfferParams)]bool
	for _, p := range params[1:] {
		name, raw, hasValue := strings.Cut(p, "=")
		name = strings.TrimSpace(name)
		i := slices.Index(deflateOfferParams[:], name)
		if i < 0 || seen[i] {
			return "", false
		}
		seen[i] = true
		value, valid := paramValue(raw)
		switch name {
		case "server_no_context_takeover", "client_no_context_takeover":
			// No value (§7.1.1). The server takes no context either
			// way and tells the client to take none.
			if hasValue {
				return "", false
			}
		case "client_max_window_bits":
			// No value, or the client's own limit (§7.1.2.2). The
			// inflater reads any window, so the response leaves it out.
			if hasValue && (!valid || !validWindowBits(value)) {
				return "", false
			}
		case "server_max_window_bits":
			// compress/flate always compresses with a 15-bit window,
			// so only a limit of 15 can be kept, and accepting it
			// takes echoing it (§7.1.2.1).
			if !hasValue || !valid || value != "15" {
				return "", false
			}
			resp += "; server_max_window_bits=15"
		}
	}
	return resp, true
}

// paramValue returns an extension parameter's value with the spaces around
// it removed and, when it is a quoted-string, unquoted (RFC 6455 §9.1). It
// reports false for a quoted-string that does not end.
func paramValue(raw string) (string, bool) {
	v := strings.TrimSpace(raw)
	if !strings.HasPrefix(v, `"`) {
		return v, true
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '"':
			return b.String(), i == len(v)-1
		case '\\':
			if i++; i == len(v) {
				return "", false
			}
		}
		b.WriteByte(v[i])
	}
	return "", false
}

// validWindowBits reports whether v is a window size parameter value: a
// decimal integer from 8 to 15 without leading zeros (RFC 7692 §7.1.2).
func validWindowBits(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 8 && n <= 15 && v == strconv.Itoa(n)
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

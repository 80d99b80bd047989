package ws

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Strictness of the opening handshake: what RFC 6455 and RFC 7692 require
// a server to refuse or decline, checked with hand-written requests.

// The header lines of a valid handshake request.
const (
	upgradeLine    = "Upgrade: websocket"
	connectionLine = "Connection: Upgrade"
	keyLine        = "Sec-WebSocket-Key: " + sampleKey
	versionLine    = "Sec-WebSocket-Version: 13"
)

// handshakeRequest writes a request for / with a Host header and lines.
func handshakeRequest(method string, lines ...string) string {
	return method + " / HTTP/1.1\r\nHost: example.com\r\n" + strings.Join(append(lines, "", ""), "\r\n")
}

// TestHandshakeRefused checks the status and headers answering a request
// that is not a valid opening handshake, and the error of Accept.
func TestHandshakeRefused(t *testing.T) {
	tests := []struct {
		name       string
		request    string
		wantStatus int
		wantErr    string // in the response body and the error of Accept
	}{
		{"POST", handshakeRequest("POST", upgradeLine, connectionLine, keyLine, versionLine), http.StatusMethodNotAllowed, "POST"},
		{"no Upgrade", handshakeRequest("GET", connectionLine, keyLine, versionLine), http.StatusUpgradeRequired, "Upgrade header"},
		{"Upgrade to something else", handshakeRequest("GET", "Upgrade: h2c", connectionLine, keyLine, versionLine), http.StatusUpgradeRequired, "Upgrade header"},
		{"no Connection", handshakeRequest("GET", upgradeLine, keyLine, versionLine), http.StatusUpgradeRequired, "Connection header"},
		{"Connection without upgrade", handshakeRequest("GET", upgradeLine, "Connection: keep-alive", keyLine, versionLine), http.StatusUpgradeRequired, "Connection header"},
		{"version 8", handshakeRequest("GET", upgradeLine, connectionLine, keyLine, "Sec-WebSocket-Version: 8"), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"version 14", handshakeRequest("GET", upgradeLine, connectionLine, keyLine, "Sec-WebSocket-Version: 14"), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"version 0", handshakeRequest("GET", upgradeLine, connectionLine, keyLine, "Sec-WebSocket-Version: 0"), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"version not a number", handshakeRequest("GET", upgradeLine, connectionLine, keyLine, "Sec-WebSocket-Version: thirteen"), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"version empty", handshakeRequest("GET", upgradeLine, connectionLine, keyLine, "Sec-WebSocket-Version:"), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"no version", handshakeRequest("GET", upgradeLine, connectionLine, keyLine), http.StatusUpgradeRequired, "Sec-WebSocket-Version"},
		{"key not base64", handshakeRequest("GET", upgradeLine, connectionLine, "Sec-WebSocket-Key: not base64!", versionLine), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"key of 15 bytes", handshakeRequest("GET", upgradeLine, connectionLine, "Sec-WebSocket-Key: MTIzNDU2Nzg5MDEyMzQ1", versionLine), http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"no key", handshakeRequest("GET", upgradeLine, connectionLine, versionLine), http.StatusBadRequest, "Sec-WebSocket-Key"},
	}
	ts := newTestServer(t, AcceptOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(waitLimit))
			if _, err := io.WriteString(nc, tt.request); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatalf("read the response: %v", err)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read the response body: %v", err)
			}
			if resp.StatusCode != tt.wantStatus || !strings.Contains(string(body), tt.wantErr) {
				t.Errorf("answered %s %q, want %d and a body mentioning %q", resp.Status, body, tt.wantStatus, tt.wantErr)
			}
			if tt.wantStatus == http.StatusUpgradeRequired {
				// RFC 6455 §4.2.2 and RFC 9110 §15.5.22.
				if got := resp.Header.Values("Sec-WebSocket-Version"); len(got) != 1 || got[0] != "13" {
					t.Errorf("426 with Sec-WebSocket-Version %q, want 13", got)
				}
				if !headerHasToken(resp.Header, "Upgrade", "websocket") || !headerHasToken(resp.Header, "Connection", "upgrade") {
					t.Errorf("426 without Upgrade: websocket and Connection: Upgrade: %v", resp.Header)
				}
			}
			select {
			case err := <-ts.errs:
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Accept returned %v, want it to mention %q", err, tt.wantErr)
				}
			case <-time.After(waitLimit):
				t.Error("Accept returned no error")
			}
		})
	}
}

// deflateAccepted is the Sec-WebSocket-Extensions response to an accepted
// permessage-deflate offer that does not limit the server's window.
const deflateAccepted = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// TestDeflateOffers checks the extension negotiated for each offer. An offer
// RFC 7692 §7 says to decline is skipped for the next one; when none is
// left the handshake still succeeds, without compression.
func TestDeflateOffers(t *testing.T) {
	tests := []struct {
		name  string
		offer string // Sec-WebSocket-Extensions; a newline starts another header line
		want  string // Sec-WebSocket-Extensions of the response
	}{
		// Accepted.
		{"no parameters", "permessage-deflate", deflateAccepted},
		{"no context takeover either way", "permessage-deflate; client_no_context_takeover; server_no_context_takeover", deflateAccepted},
		{"client_max_window_bits without value", "permessage-deflate; client_max_window_bits", deflateAccepted},
		{"client_max_window_bits=8", "permessage-deflate; client_max_window_bits=8", deflateAccepted},
		{"client_max_window_bits=15", "permessage-deflate; client_max_window_bits=15", deflateAccepted},
		{"client_max_window_bits quoted", `permessage-deflate; client_max_window_bits="10"`, deflateAccepted},
		{"client_max_window_bits quoted with an escape", `permessage-deflate; client_max_window_bits="1\2"`, deflateAccepted},
		{"spaces around =", "permessage-deflate ; client_max_window_bits = 12", deflateAccepted},
		{"all parameters a client may send", "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits=9", deflateAccepted},

		// client_max_window_bits with an invalid value.
		{"client_max_window_bits=7", "permessage-deflate; client_max_window_bits=7", ""},
		{"client_max_window_bits=16", "permessage-deflate; client_max_window_bits=16", ""},
		{"client_max_window_bits=0", "permessage-deflate; client_max_window_bits=0", ""},
		{"client_max_window_bits=abc", "permessage-deflate; client_max_window_bits=abc", ""},
		{"client_max_window_bits with a leading zero", "permessage-deflate; client_max_window_bits=09", ""},
		{"client_max_window_bits with a sign", "permessage-deflate; client_max_window_bits=+9", ""},
		{"client_max_window_bits=", "permessage-deflate; client_max_window_bits=", ""},
		{"client_max_window_bits quoted empty", `permessage-deflate; client_max_window_bits=""`, ""},
		{"client_max_window_bits quote unterminated", `permessage-deflate; client_max_window_bits="10`, ""},

		// server_max_window_bits: compress/flate always uses 15 bits,
		// and an accepted limit is echoed (RFC 7692 §7.1.2.1).
		{"server_max_window_bits=15", "permessage-deflate; server_max_window_bits=15", deflateAccepted + "; server_max_window_bits=15"},
		{"server_max_window_bits quoted 15", `permessage-deflate; server_max_window_bits="15"`, deflateAccepted + "; server_max_window_bits=15"},
		{"server_max_window_bits=15 among the rest", "permessage-deflate; client_no_context_takeover; server_max_window_bits=15; server_no_context_takeover; client_max_window_bits=10", deflateAccepted + "; server_max_window_bits=15"},
		{"server_max_window_bits=15 twice", "permessage-deflate; server_max_window_bits=15; server_max_window_bits=15", ""},
		{"server_max_window_bits with a leading zero", "permessage-deflate; server_max_window_bits=015", ""},
		{"server_max_window_bits=14", "permessage-deflate; server_max_window_bits=14", ""},
		{"server_max_window_bits=8", "permessage-deflate; server_max_window_bits=8", ""},
		{"server_max_window_bits=16", "permessage-deflate; server_max_window_bits=16", ""},
		{"server_max_window_bits=abc", "permessage-deflate; server_max_window_bits=abc", ""},
		{"server_max_window_bits without value", "permessage-deflate; server_max_window_bits", ""},

		// Context takeover parameters take no value.
		{"server_no_context_takeover with a value", "permessage-deflate; server_no_context_takeover=1", ""},
		{"client_no_context_takeover with a value", "permessage-deflate; client_no_context_takeover=true", ""},
		{"client_no_context_takeover=", "permessage-deflate; client_no_context_takeover=", ""},
		{"server_no_context_takeover quoted value", `permessage-deflate; server_no_context_takeover=""`, ""},

		// A parameter more than once.
		{"client_max_window_bits twice", "permessage-deflate; client_max_window_bits; client_max_window_bits=10", ""},
		{"client_max_window_bits twice, same value", "permessage-deflate; client_max_window_bits=10; client_max_window_bits=10", ""},
		{"server_no_context_takeover twice", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", ""},
		{"client_no_context_takeover twice", "permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_no_context_takeover", ""},

		// Unknown parameters and other extensions.
		{"unknown parameter", "permessage-deflate; foo", ""},
		{"unknown parameter with a value", "permessage-deflate; client_max_window_bits; foo=1", ""},
		{"empty parameter", "permessage-deflate;", ""},
		{"parameter names are case-sensitive", "permessage-deflate; Client_Max_Window_Bits", ""},
		{"another extension", "x-webkit-deflate-frame", ""},

		// Several offers: the first acceptable one is answered.
		{"declined, then acceptable", "permessage-deflate; client_max_window_bits=7, permessage-deflate; client_max_window_bits", deflateAccepted},
		{"declined twice, then acceptable", "permessage-deflate; foo, permessage-deflate; server_no_context_takeover=1, permessage-deflate", deflateAccepted},
		{"another extension, then acceptable", "x-webkit-deflate-frame, permessage-deflate", deflateAccepted},
		{"declined, then acceptable on another line", "permessage-deflate; server_max_window_bits=10\npermessage-deflate", deflateAccepted},
		{"declined, then server_max_window_bits=15", "permessage-deflate; server_max_window_bits=10, permessage-deflate; server_max_window_bits=15", deflateAccepted + "; server_max_window_bits=15"},
		{"server_max_window_bits=15 first", "permessage-deflate; server_max_window_bits=15, permessage-deflate", deflateAccepted + "; server_max_window_bits=15"},
		{"server_max_window_bits=15 second", "permessage-deflate, permessage-deflate; server_max_window_bits=15", deflateAccepted},
		{"all declined", "permessage-deflate; client_max_window_bits=16, permessage-deflate; server_max_window_bits=9\npermessage-deflate; foo", ""},
	}
	ts := newTestServer(t, AcceptOptions{Compression: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var lines []string
			for offer := range strings.SplitSeq(tt.offer, "\n") {
				lines = append(lines, "Sec-WebSocket-Extensions: "+offer)
			}
			_, _, resp := rawDial(t, ts, lines, nil)
			c := ts.accept(t)
			if got := resp.Header.Values("Sec-WebSocket-Extensions"); len(got) > 1 || strings.Join(got, "") != tt.want {
				t.Errorf("offer %q: Sec-WebSocket-Extensions %q, want %q", tt.offer, got, tt.want)
			}
			if c.deflate != (tt.want != "") {
				t.Errorf("offer %q: server conn deflate = %v, want %v", tt.offer, c.deflate, tt.want != "")
			}
		})
	}
}

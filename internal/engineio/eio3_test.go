package engineio

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rallyhq/rally/internal/fuzzseed"
	"github.com/rallyhq/rally/internal/nodetest"
)

// payloadCases are frames and the revision 3 payloads of them, as
// engine.io-parser 2.x (the official server's parser-v3) writes them:
// lengths of text payloads in UTF-16 code units, of binary ones in bytes.
var payloadCases = []struct {
	name   string
	frames []Frame
	b64    bool
	text   string // the text payload, or
	binary string // the binary one, in hex
}{
	{"ascii", []Frame{TextFrame(Message, "hello"), {Data: []byte{Ping}}}, false, "6:4hello1:2", ""},
	{"non-ASCII", []Frame{TextFrame(Message, "héllo € 😀")}, false, "11:4héllo € 😀", ""},
	{"binary as base64", []Frame{TextFrame(Message, "51-"), {Data: []byte{4, 1, 2, 255}, Binary: true}}, true, "4:451-6:b4AQL/", ""},
	{"binary", []Frame{TextFrame(Message, "é"), {Data: []byte{4, 1, 2}, Binary: true}}, false, "",
		"00" + "03" + "ff" + "34c3a9" + "01" + "03" + "ff" + "040102"},
	{"long binary", []Frame{{Data: append([]byte{4}, make([]byte, 11)...), Binary: true}}, false, "",
		"01" + "0102" + "ff" + "04" + strings.Repeat("00", 11)},
}

func TestPayload3(t *testing.T) {
	for _, c := range payloadCases {
		t.Run(c.name, func(t *testing.T) {
			got, binary := AppendPayload3(nil, c.frames, c.b64)
			if binary != (c.binary != "") {
				t.Fatalf("binary = %v", binary)
			}
			want := []byte(c.text)
			if binary {
				want, _ = hex.DecodeString(c.binary)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("payload %q (%x), want %q (%x)", got, got, want, want)
			}
			// And back: what the client posts in the same format.
			var back []Frame
			err := DecodePayload3(got, binary, func(p Packet) {
				if p.Binary {
					back = append(back, Frame{Data: append([]byte{4}, p.Data...), Binary: true})
				} else {
					back = append(back, TextFrame(p.Type, string(p.Data)))
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(back) != len(c.frames) {
				t.Fatalf("decoded %d packets, want %d", len(back), len(c.frames))
			}
			for i := range back {
				if !bytes.Equal(back[i].Data, c.frames[i].Data) || back[i].Binary != c.frames[i].Binary {
					t.Errorf("packet %d: %q, want %q", i, back[i].Data, c.frames[i].Data)
				}
			}
		})
	}
}

// The official server's parser-v3 writes the payloads of payloadCases
// byte for byte, and the v2 client's parser reads them as the frames.
func TestPayload3Node(t *testing.T) {
	node, root := nodetest.Node(t)
	const script = `
const p = require(require('node:path').resolve('node_modules/engine.io/build/parser-v3'));
const client = require(require('node:path').resolve('node_modules/socket.io-client-v2/node_modules/engine.io-parser'));
const cases = JSON.parse(process.argv[1]);
const out = cases.map(([frames, b64]) => {
  const packets = frames.map(([text, bin]) => bin ? { type: 'message', data: Buffer.from(bin, 'hex').subarray(1) }
    : { type: ['open','close','ping','pong','message','upgrade','noop'][Number(text[0])], data: text.length > 1 ? text.slice(1) : undefined });
  let r;
  p.encodePayload(packets, !b64, (d) => { r = d; });
  // What the v2 client's own parser (engine.io-parser 2.2) makes of it.
  const decoded = [];
  client.decodePayload(r, (pkt) => {
    decoded.push(Buffer.isBuffer(pkt.data) ? ['', '04' + pkt.data.toString('hex')]
      : [String(client.packets[pkt.type]) + (pkt.data === undefined ? '' : pkt.data), '']);
  });
  return typeof r === 'string' ? { text: r, decoded } : { binary: r.toString('hex'), decoded };
});
console.log(JSON.stringify(out));`
	var in []any
	for _, c := range payloadCases {
		var fs []any
		for _, f := range c.frames {
			if f.Binary {
				fs = append(fs, []any{"", hex.EncodeToString(f.Data)})
			} else {
				fs = append(fs, []any{string(f.Data), ""})
			}
		}
		in = append(in, []any{fs, c.b64})
	}
	arg, _ := json.Marshal(in)
	cmd := exec.Command(node, "-e", script, string(arg))
	cmd.Dir = filepath.Join(root, "testdata")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v: %s", err, outb)
	}
	var got []struct {
		Text, Binary string
		Decoded      [][2]string
	}
	if err := json.Unmarshal(outb, &got); err != nil {
		t.Fatalf("%v: %s", err, outb)
	}
	for i, c := range payloadCases {
		if got[i].Text != c.text || got[i].Binary != c.binary {
			t.Errorf("%s: Node wrote %q %s, rally %q %s", c.name, got[i].Text, got[i].Binary, c.text, c.binary)
		}
		var want [][2]string
		for _, f := range c.frames {
			if f.Binary {
				want = append(want, [2]string{"", hex.EncodeToString(f.Data)})
			} else {
				want = append(want, [2]string{string(f.Data), ""})
			}
		}
		if !slices.Equal(got[i].Decoded, want) {
			t.Errorf("%s: the v2 client's parser read %q, want %q", c.name, got[i].Decoded, want)
		}
	}
}

func TestDecodePayload3Malformed(t *testing.T) {
	for _, c := range []struct {
		name   string
		body   string
		binary bool
	}{
		{"empty", "", false},
		{"no length", ":4a", false},
		{"no colon", "12", false},
		{"not a number", "x:4a", false},
		{"short", "5:4a", false},
		{"half a surrogate pair", "2:4😀", false},
		{"huge length", strings.Repeat("9", 30) + ":4", false},
		{"bad type", "1:9", false},
		{"bad base64", "3:b4*", false},
		{"base64 of another type", "3:b2AA", false},
		{"binary truncated", "\x01\x09\xff\x04", true},
		{"binary without 255", "\x00\x01\x02", true},
		{"binary length not digits", "\x00\x0a\xff4", true},
		{"binary of another type", "\x01\x02\xff\x02\x00", true},
		{"binary text not UTF-8", "\x00\x02\xff4\xff", true},
		{"text not UTF-8", "2:4\xff", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := DecodePayload3([]byte(c.body), c.binary, func(Packet) {}); err == nil {
				t.Fatalf("%q: no error", c.body)
			}
		})
	}
}

func TestEIO3Refused(t *testing.T) {
	ts := newTestServer(t, Options{})
	for _, q := range []string{"EIO=3&transport=polling", "transport=polling"} {
		code, body, _ := ts.do(t, "GET", q, "")
		if code != 400 || body != `{"code":5,"message":"Unsupported protocol version"}` {
			t.Errorf("%s: %d %s", q, code, body)
		}
	}
}

// handshake3 opens a revision 3 polling session and returns its sid.
func handshake3(t *testing.T, ts *testServer, query string) string {
	t.Helper()
	code, body, h := ts.do(t, "GET", "EIO=3&transport=polling"+query, "")
	if code != 200 || h.Get("Content-Type") != "text/plain; charset=UTF-8" {
		t.Fatalf("handshake: %d %s", code, body)
	}
	n, rest, ok := strings.Cut(body, ":")
	if !ok || n != strconv.Itoa(len(rest)) {
		t.Fatalf("handshake payload %q", body)
	}
	o := parseOpen(t, rest)
	if o.PingInterval != 300 || o.PingTimeout != 200 || len(o.Upgrades) != 1 || o.MaxPayload != 1e6 {
		t.Errorf("open packet %s", rest)
	}
	return o.Sid
}

func TestEIO3Polling(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	sid := handshake3(t, ts, "")
	q := "EIO=3&transport=polling&sid=" + sid

	// A ping is answered with a pong; text comes back with its length in
	// UTF-16 code units.
	if code, body, _ := ts.do(t, "POST", q, "1:211:4héllo € 😀"); code != 200 || body != "ok" {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body, _ := ts.do(t, "GET", q, ""); code != 200 || body != "1:311:4héllo € 😀" {
		t.Fatalf("poll: %d %q", code, body)
	}

	// A binary POST; binary answers come back as a binary payload.
	req, _ := http.NewRequest("POST", ts.URL+"/?"+q, bytes.NewReader([]byte{1, 3, 255, 4, 7, 8}))
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("binary POST: %d", res.StatusCode)
	}
	res, err = http.Get(ts.URL + "/?" + q)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.Header.Get("Content-Type") != "application/octet-stream" || !bytes.Equal(b, []byte{1, 3, 255, 4, 7, 8}) {
		t.Fatalf("binary poll: %s %x", res.Header.Get("Content-Type"), b)
	}

	// The session keeps its revision.
	if code, body, _ := ts.do(t, "GET", "EIO=4&transport=polling&sid="+sid, ""); code != 400 || body != `{"code":3,"message":"Bad request"}` {
		t.Errorf("EIO=4 poll of a revision 3 session: %d %s", code, body)
	}

	// The client pings; without a ping for the interval and the timeout
	// the session ends.
	start := time.Now()
	if r := ts.session(t, 0).wait(t); r != ReasonPingTimeout {
		t.Errorf("reason %q", r)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("closed after %v, before interval+timeout", d)
	}
}

func TestEIO3PollingBase64(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	sid := handshake3(t, ts, "&b64=1")
	q := "EIO=3&transport=polling&b64=1&sid=" + sid
	if code, body, _ := ts.do(t, "POST", q, "6:b4AQL/"); code != 200 || body != "ok" {
		t.Fatalf("POST: %d %s", code, body)
	}
	if code, body, _ := ts.do(t, "GET", q, ""); code != 200 || body != "6:b4AQL/" {
		t.Fatalf("poll: %d %q", code, body)
	}
	// A malformed payload is refused and ends the session.
	if code, _, _ := ts.do(t, "POST", q, "9:4"); code != 400 {
		t.Errorf("malformed POST: %d", code)
	}
	if r := ts.session(t, 0).wait(t); r != ReasonParseError {
		t.Errorf("reason %q", r)
	}
}

func TestEIO3PongRefused(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	sid := handshake3(t, ts, "")
	ts.do(t, "POST", "EIO=3&transport=polling&sid="+sid, "1:3")
	if r := ts.session(t, 0).wait(t); r != ReasonTransportError {
		t.Errorf("reason %q", r)
	}
}

func TestEIO3WebSocket(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	sid := handshake3(t, ts, "")
	ctx := t.Context()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/?EIO=3&transport=websocket&sid="+sid, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("2probe"))
	if typ, m, err := c.Read(ctx); err != nil || typ != websocket.MessageText || string(m) != "3probe" {
		t.Fatalf("probe: %v %q", err, m)
	}
	c.Write(ctx, websocket.MessageText, []byte("5"))
	// Binary messages carry their type byte both ways; pings are the
	// client's, past the server's interval and timeout.
	for range 3 {
		time.Sleep(200 * time.Millisecond)
		c.Write(ctx, websocket.MessageText, []byte("2"))
		if _, m, err := c.Read(ctx); err != nil || string(m) != "3" {
			t.Fatalf("pong: %v %q", err, m)
		}
	}
	c.Write(ctx, websocket.MessageBinary, []byte{4, 1, 2})
	if typ, m, err := c.Read(ctx); err != nil || typ != websocket.MessageBinary || !bytes.Equal(m, []byte{4, 1, 2}) {
		t.Fatalf("binary echo: %v %v %x", err, typ, m)
	}
	// A binary message of another type is a parse error.
	c.Write(ctx, websocket.MessageBinary, []byte{2})
	if r := ts.session(t, 0).wait(t); r != ReasonParseError {
		t.Errorf("reason %q", r)
	}
}

// payload3Seeds are revision 3 payloads, text ("t") and binary ("b").
var payload3Seeds = []struct{ name, kind, data string }{
	{"text", "t", "6:4hello1:2"},
	{"non-ascii", "t", "11:4héllo € 😀"},
	{"base64", "t", "4:451-6:b4AQL/"},
	{"empty-packet", "t", "0:1:2"},
	{"binary", "b", "\x00\x03\xff4\xc3\xa9\x01\x03\xff\x04\x01\x02"},
	{"truncated", "b", "\x01\x09\xff\x04"},
}

// FuzzDecodePayload3: any body decodes or fails without panicking, and
// what decodes encodes back (as the server writes it) to a payload that
// decodes to the same packets.
func FuzzDecodePayload3(f *testing.F) {
	for _, s := range payload3Seeds {
		fuzzseed.Add(f, s.name, []byte(s.kind), []byte(s.data))
	}
	f.Fuzz(func(t *testing.T, kind, body []byte) {
		binary := len(kind) > 0 && kind[0] == 'b'
		var frames []Frame
		if DecodePayload3(body, binary, func(p Packet) {
			if p.Binary {
				frames = append(frames, Frame{Data: append([]byte{4}, p.Data...), Binary: true})
			} else {
				frames = append(frames, TextFrame(p.Type, string(p.Data)))
			}
		}) != nil || len(frames) == 0 {
			return
		}
		for _, b64 := range []bool{false, true} {
			enc, bin := AppendPayload3(nil, frames, b64)
			i := 0
			err := DecodePayload3(enc, bin, func(p Packet) {
				f := frames[i]
				i++
				if p.Binary != f.Binary || (p.Binary && !bytes.Equal(p.Data, f.Data[1:])) ||
					(!p.Binary && (p.Type != f.Data[0] || !bytes.Equal(p.Data, f.Data[1:]))) {
					t.Fatalf("packet %d: %+v, from %q", i-1, p, f.Data)
				}
			})
			if err != nil || i != len(frames) {
				t.Fatalf("re-encoded %q (b64 %v): %v, %d of %d packets", enc, b64, err, i, len(frames))
			}
		}
	})
}

// A client that pings without reading the pongs is closed once they fill
// its queue, as one that does not read its messages.
func TestEIO3PingFlood(t *testing.T) {
	ts := newTestServer(t, Options{AllowEIO3: true, MaxQueuedBytes: 4 << 10, PingInterval: 300 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	sid := handshake3(t, ts, "")
	q := "EIO=3&transport=polling&sid=" + sid
	body := strings.Repeat("1:2", 200) // 200 pongs of 41 bytes each: more than 4 KiB
	ts.do(t, "POST", q, body)
	if r := ts.session(t, 0).wait(t); r != ReasonQueueFull {
		t.Errorf("reason %q", r)
	}
}

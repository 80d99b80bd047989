package redisadapter

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustData(t *testing.T, p rally.Packet) []any {
	t.Helper()
	data, err := packetData(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newPacket(t *testing.T, event string, args ...any) rally.Packet {
	t.Helper()
	p, err := rally.NewPacket(event, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The deterministic vectors of REDIS-ADAPTER.md section 8, produced from
// rally Packets by the functions the adapter and emitter publish with.
func TestWireVectors(t *testing.T) {
	check := func(name string, got []byte, err error, want string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if w := mustHex(t, want); !bytes.Equal(got, w) {
			t.Errorf("%s:\n got %x\nwant %x", name, got, w)
		}
	}

	msg, err := broadcastMessage("ABCDEF", "/", mustData(t, newPacket(t, "hello", 1)), rally.BroadcastOptions{})
	check("broadcast to all", msg, err,
		"93a641424344454683a47479706502a46461746192a568656c6c6f01a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380")

	img := newPacket(t, "img", []byte{1, 2, 3})
	if string(img.Data) != `["img",{"_placeholder":true,"num":0}]` {
		t.Fatalf("rally's packet: %s", img.Data)
	}
	msg, err = broadcastMessage("ABCDEF", "/chat", mustData(t, img),
		rally.BroadcastOptions{Rooms: []string{"r1"}, Except: []string{"sid1"}, Volatile: true})
	check("room, except, volatile, binary", msg, err,
		"93a641424344454683a47479706502a46461746192a3696d67c403010203a36e7370a52f6368617483a5726f6f6d7391a27231a665786365707491a473696431a5666c61677381a8766f6c6174696c65c3")

	msg, err = broadcastRequest("ABCDEF", "REQ123", "/", mustData(t, newPacket(t, "q")), rally.BroadcastOptions{}, 5000)
	check("BROADCAST request", msg, err,
		"85a3756964a6414243444546a9726571756573744964a6524551313233a47479706507a67061636b657483a47479706502a46461746191a171a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd1388")

	ok, err := rally.ReplyOf("ok")
	if err != nil {
		t.Fatal(err)
	}
	arg, err := replyValue(ok, 0)
	if err != nil {
		t.Fatal(err)
	}
	msg, err = encodeMessage(ackResponse("REQ123", arg), true)
	check("BROADCAST_ACK", msg, err, "83a47479706509a9726571756573744964a6524551313233a67061636b6574a26f6b")

	msg, err = emitterMessage("/", mustData(t, newPacket(t, "x")), rally.BroadcastOptions{})
	check("emitter broadcast", msg, err,
		"93a7656d697474657283a47479706502a46461746191a178a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490")

	// The numbers vector, as arguments of a rally event: integers that
	// travel as JSON numbers are written as MessagePack integers.
	nums := newPacket(t, "n", 0, 127, 128, 255, 256, 65535, 65536, -1, -32, -33, -128, -129, 1.5, float64(1<<53), nil, true, false)
	wire, err := msgpack.Marshal(mustData(t, nums)[1:])
	check("numbers", wire, err, "dc0011007fcc80ccffcd0100cdffffce00010000ffe0d0dfd080d1ff7fcb3ff8000000000000cf0020000000000000c0c3c2")
}

// Node's captured broadcasts decode into the Packets rally delivers.
func TestDecodeNodeBroadcasts(t *testing.T) {
	v, err := msgpack.Unmarshal(mustHex(t, "93a66b4f746f524e83a47479706502a46461746193a362696ec40301020381a66e6573746564c40104a36e7370a12f83a5726f6f6d7391a5726f6f6d42a665786365707490a5666c61677380"))
	if err != nil {
		t.Fatal(err)
	}
	msg := v.([]any)
	data, _ := msg[1].(msgpack.Map).Get("data")
	p, err := dataPacket(data)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != `["bin",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}]` {
		t.Fatalf("data %s", p.Data)
	}
	if !reflect.DeepEqual(p.Attachments, [][]byte{{1, 2, 3}, {4}}) {
		t.Fatalf("attachments %v", p.Attachments)
	}
	opts := getOptions(msg[2].(msgpack.Map))
	if !reflect.DeepEqual(opts.Rooms, []string{"roomB"}) || len(opts.Except) != 0 || opts.Volatile {
		t.Fatalf("options %+v", opts)
	}

	v, _ = msgpack.Unmarshal(mustHex(t, "93a66b4f746f524e83a47479706502a46461746191a56d756c7469a36e7370a12f83a5726f6f6d7392a27231a27232a665786365707491a27233a5666c61677382a8766f6c6174696c65c3a8636f6d7072657373c2"))
	opts = getOptions(v.([]any)[2].(msgpack.Map))
	// Node sent flags {volatile: true, compress: false}.
	if !reflect.DeepEqual(opts, rally.BroadcastOptions{Rooms: []string{"r1", "r2"}, Except: []string{"r3"}, Volatile: true, NoCompress: true}) {
		t.Fatalf("options %+v", opts)
	}

	// Numeric rooms (a Node app's join(123)) are matched by their decimal
	// form.
	if got := getRooms(msgpack.Map{{Key: "rooms", Value: []any{int64(123), 1.5, "x", true}}}, "rooms"); !reflect.DeepEqual(got, []string{"123", "1.5", "x"}) {
		t.Fatalf("rooms %v", got)
	}
}

func TestPacketConversion(t *testing.T) {
	p := newPacket(t, "ev", map[string]any{"b": []byte{9}, "n": 3}, [][]byte{{1}, {2}}, "s")
	data := mustData(t, p)
	back, err := dataPacket(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Data, p.Data) || !reflect.DeepEqual(back.Attachments, p.Attachments) {
		t.Fatalf("round trip:\n %s %v\n %s %v", p.Data, p.Attachments, back.Data, back.Attachments)
	}
	for _, bad := range []any{nil, []any{}, []any{int64(1)}, msgpack.Map{}} {
		if _, err := dataPacket(bad); err == nil {
			t.Errorf("dataPacket(%#v): no error", bad)
		}
	}
	if _, err := packetData(rally.Packet{Data: json.RawMessage(`["x",{"_placeholder":true,"num":0}]`)}); err == nil {
		t.Error("placeholder without attachment accepted")
	}
}

// Ack arguments keep their binary values and key order through Redis.
func TestReplyConversion(t *testing.T) {
	r := rally.NewReply([]json.RawMessage{
		json.RawMessage(`{"z":1,"bin":{"_placeholder":true,"num":1},"list":[{"_placeholder":true,"num":0}]}`),
	}, [][]byte{{7}, {8, 9}})
	v, err := replyValue(r, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := msgpack.Map{{Key: "z", Value: int64(1)}, {Key: "bin", Value: []byte{8, 9}}, {Key: "list", Value: []any{[]byte{7}}}}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %#v", v)
	}
	back, err := replyOf(v, true)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Z    int
		Bin  []byte
		List [][]byte
	}
	if err := back.Decode(&got); err != nil || got.Z != 1 || !bytes.Equal(got.Bin, []byte{8, 9}) || !bytes.Equal(got.List[0], []byte{7}) {
		t.Fatalf("decoded %+v, %v", got, err)
	}
	if empty, _ := replyOf(nil, false); empty.Len() != 0 {
		t.Fatal("missing ack argument gave a reply argument")
	}
	if empty, _ := replyOf(msgpack.Undefined{}, true); empty.Len() != 0 {
		t.Fatal("undefined ack argument gave a reply argument")
	}
}

func TestHandshakeConversion(t *testing.T) {
	issued := time.Date(2026, 11, 26, 21, 50, 18, 531e6, time.UTC)
	h := &rally.Handshake{
		Header:      http.Header{"User-Agent": {"go"}, "Cookie": {"a=1", "b=2"}, "X-Many": {"1", "2"}},
		Query:       url.Values{"EIO": {"4"}, "tag": {"a", "b"}},
		Auth:        json.RawMessage(`{"token":"t"}`),
		Address:     "127.0.0.1",
		CrossOrigin: true,
		URL:         "/socket.io/?EIO=4&transport=polling",
		Issued:      issued,
	}
	nh := toNodeHandshake(h)
	text, err := json.Marshal(nh)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"time":"Thu Nov 26 2026 21:50:18 GMT+0000 (Coordinated Universal Time)"`,
		`"issued":1795729818531`, `"user-agent":"go"`, `"cookie":"a=1; b=2"`, `"x-many":"1, 2"`,
		`"EIO":"4"`, `"tag":["a","b"]`, `"auth":{"token":"t"}`, `"xdomain":true`, `"secure":false`, `"address":"127.0.0.1"`,
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("missing %s in %s", want, text)
		}
	}
	var parsed nodeHandshake
	if err := json.Unmarshal(text, &parsed); err != nil {
		t.Fatal(err)
	}
	back := fromNodeHandshake(&parsed)
	if back.Header.Get("User-Agent") != "go" || back.Query.Get("EIO") != "4" || len(back.Query["tag"]) != 2 ||
		string(back.Auth) != `{"token":"t"}` || !back.Issued.Equal(issued) || !back.CrossOrigin || back.URL != h.URL || back.Address != "127.0.0.1" {
		t.Fatalf("back: %+v", back)
	}

	// Node's captured handshake (time only, no issued) and an empty auth.
	var node nodeHandshake
	json.Unmarshal([]byte(`{"headers":{"host":"localhost:3000"},"time":"Thu Nov 26 2026 21:50:18 GMT+0000 (Coordinated Universal Time)","address":"::1","xdomain":false,"secure":true,"url":"/socket.io/?EIO=4&transport=websocket","query":{"EIO":"4","transport":"websocket"},"auth":{}}`), &node)
	hs := fromNodeHandshake(&node)
	if hs.Header.Get("Host") != "localhost:3000" || !hs.Secure || hs.Issued.Unix() != issued.Unix() || string(hs.Auth) != "{}" || hs.Query.Get("transport") != "websocket" {
		t.Fatalf("from Node: %+v", hs)
	}
	if nh := toNodeHandshake(&rally.Handshake{}); string(nh.Auth) != "{}" {
		t.Fatalf("no auth: %s", nh.Auth)
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if len(id) != 6 || strings.Trim(id, idAlphabet) != "" {
			t.Fatalf("id %q", id)
		}
		seen[id] = true
	}
	if len(seen) < 990 {
		t.Fatalf("only %d distinct ids of 1000", len(seen))
	}
}

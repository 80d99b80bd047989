package redisadapter

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/rallyhq/rally"
)

// Host travels as headers.host, both ways, and a socket without data
// reaches Node with data {}.
func TestHandshakeHostAndData(t *testing.T) {
	nh := toNodeHandshake(&rally.Handshake{Host: "example.com:8080", Header: http.Header{"User-Agent": {"go"}}})
	if string(nh.Headers["host"]) != `"example.com:8080"` || string(nh.Headers["user-agent"]) != `"go"` {
		t.Fatalf("headers sent to Node: %s", nh.Headers)
	}
	if _, ok := toNodeHandshake(&rally.Handshake{}).Headers["host"]; ok {
		t.Fatal("a handshake without Host sent a host header")
	}

	var node nodeHandshake
	if err := json.Unmarshal([]byte(`{"headers":{"host":"localhost:3000","accept":"*/*"},"auth":{}}`), &node); err != nil {
		t.Fatal(err)
	}
	if h := fromNodeHandshake(&node); h.Host != "localhost:3000" || h.Header.Get("Accept") != "*/*" {
		t.Fatalf("from Node: Host %q, Header %v", h.Host, h.Header)
	}

	for _, tt := range []struct {
		data any
		want string
	}{
		{nil, `{}`},
		{map[string]any{}, `{}`},
		{map[string]any{"user": "bob"}, `{"user":"bob"}`},
		{"text", `"text"`},
	} {
		rs, err := toRemoteSocket(rally.SocketInfo{ID: "x", Data: tt.data})
		if err != nil {
			t.Fatal(err)
		}
		text, _ := json.Marshal(rs)
		var got struct{ Data json.RawMessage }
		json.Unmarshal(text, &got)
		if string(got.Data) != tt.want {
			t.Errorf("data %#v sent as %s, want %s", tt.data, got.Data, tt.want)
		}
	}
}

package msgpackparser_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/msgpackparser"
)

// A hub and a Go client that both speak socket.io-msgpack-parser's format,
// as Node apps set up with parser: require("socket.io-msgpack-parser").
func Example() {
	hub := rally.NewHub(&rally.Options{Parser: msgpackparser.Parser{}})
	hub.On("upload", func(s *rally.Socket, name string, data []byte) (string, int) {
		return name, len(data)
	})
	srv := httptest.NewServer(hub)
	defer srv.Close()
	defer hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL, &client.Options{Parser: msgpackparser.Parser{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	reply, err := c.EmitWithAck(ctx, "upload", "photo.jpg", []byte{0xff, 0xd8, 0xff})
	if err != nil {
		fmt.Println(err)
		return
	}
	var name string
	var size int
	reply.Decode(&name, &size)
	fmt.Println(name, size)
	// Output: photo.jpg 3
}

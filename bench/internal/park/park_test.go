//go:build linux

package park

import (
	"bytes"
	"syscall"
	"testing"
	"time"
)

func TestPongAndDrop(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	server := fds[1]
	defer syscall.Close(server)
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Add(fds[0]); err != nil {
		t.Fatal(err)
	}
	// A ping split over two writes, then a message and a second ping in one.
	syscall.Write(server, []byte{0x81})
	time.Sleep(20 * time.Millisecond)
	syscall.Write(server, []byte{0x01, '2', 0x81, 0x02, '4', '2', 0x81, 0x01, '2'})
	var got []byte
	buf := make([]byte, 64)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < 2*len(pongFrame) && time.Now().Before(deadline) {
		n, err := syscall.Read(server, buf)
		if err == nil {
			got = append(got, buf[:n]...)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if want := append(append([]byte(nil), pongFrame...), pongFrame...); !bytes.Equal(got, want) {
		t.Fatalf("server read %x, want two pongs %x", got, want)
	}
	if s := p.Stats(); s.Pings != 2 || s.Others != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
	// A close frame from the server drops the connection.
	syscall.Write(server, []byte{0x88, 0x00})
	for p.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := p.Stats(); s.Dropped != 1 || p.Open() != 0 {
		t.Fatalf("after close: stats %+v, %d open", s, p.Open())
	}
}

package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/rallyhq/rally"
)

// server holds what the chat's handlers share.
type server struct {
	cfg Config
	hub *rally.Hub
	log *slog.Logger
}

// NewHub returns a hub that runs the chat, in memory unless cfg.Adapter
// is set. Mount it behind Authenticate(cfg.Token) at "/socket.io/", and
// shut it down when done.
func NewHub(cfg Config) *rally.Hub {
	log := logger(cfg)
	hub := rally.NewHub(&rally.Options{Logger: log, Adapter: cfg.Adapter, GenerateID: cfg.GenerateID})
	c := &server{cfg: cfg, hub: hub, log: log}

	hub.Use(c.admit) // auth.go
	hub.OnConnect(c.connected)
	hub.OnDisconnect(c.disconnected)

	// rooms.go. Each handler's parameters are decoded from the event's
	// arguments; its results are the ack, or {"error": ...} when the
	// last one, an error, is not nil.
	hub.On("set nickname", c.setNickname)
	hub.On("join", c.join)
	hub.On("leave", c.leave)
	hub.On("chat message", c.chatMessage)
	hub.On("file", c.file)
	// Events the chat does not know are answered, when the client asks
	// for an answer, rather than left unanswered as a Node server would.
	hub.OnUnhandled(func(s *rally.Socket, e *rally.Event, ack rally.Ack) {
		ack.Send(map[string]string{"error": "unknown event"})
	})

	// The two events of the Socket.IO documentation's first example.
	hub.On("message", func(s *rally.Socket, args ...any) {
		s.Send(args...) // binary arguments come as []byte and go back as binary
	})
	hub.On("salutations", func(s *rally.Socket, text string, who map[string]string, data []byte) {
		log.Info("chat: salutations", "socket", s.ID(), "text", text, "who", who, "data", fmt.Sprint(data))
	})
	return hub
}

func (c *server) connected(s *rally.Socket) {
	p := profile(s)
	c.log.Info("chat: connected", "socket", s.ID(), "nickname", p.Nickname, "member", p.Member,
		"transport", s.Transport(), "address", s.Handshake().Address)
	s.Emit("greetings", "Hey!", map[string]string{"ms": "jane"}, []byte{4, 3, 2, 1})
}

// disconnected updates the user lists of the rooms the socket was in: it
// is still in them while OnDisconnect handlers run, but no longer counted
// as connected.
func (c *server) disconnected(s *rally.Socket, reason string) {
	c.log.Info("chat: disconnected", "socket", s.ID(), "nickname", profile(s).Nickname, "reason", reason)
	// s.Context() ends at the disconnect; the update of the rooms' user
	// lists keeps its values, with a deadline of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.Context()), 5*time.Second)
	defer cancel()
	for _, room := range joinedRooms(s) {
		c.publishUsers(ctx, room)
	}
}

// profile returns the socket's Profile, set by admit.
func profile(s *rally.Socket) Profile { return profileOf(s.Data()) }

// profileOf returns the Profile of a socket's data: the value itself on
// this server, its JSON form decoded for a socket of another instance.
func profileOf(data any) Profile {
	if p, ok := data.(Profile); ok {
		return p
	}
	var p Profile
	if b, err := json.Marshal(data); err == nil {
		json.Unmarshal(b, &p)
	}
	return p
}

// joinedRooms lists the chat rooms the socket is in.
func joinedRooms(s *rally.Socket) []string {
	var rooms []string
	for _, key := range s.Rooms() {
		if room, ok := strings.CutPrefix(key, roomPrefix); ok {
			rooms = append(rooms, room)
		}
	}
	return rooms
}

package chat

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/rallyhq/rally"
)

const (
	roomPrefix  = "room:"     // see the package comment
	listTimeout = time.Second // bounds the reading of a user list
)

func (c *server) setNickname(s *rally.Socket, name string) (string, error) {
	nick, err := cleanNickname(name)
	if err != nil {
		return "", err
	}
	p := profile(s)
	p.Nickname = nick
	s.SetData(p)
	for _, room := range joinedRooms(s) {
		c.publishUsers(s.Context(), room)
	}
	return nick, nil
}

func (c *server) join(s *rally.Socket, room string) (RoomInfo, error) {
	room, err := cleanRoom(room)
	if err != nil {
		return RoomInfo{}, err
	}
	s.Join(roomPrefix + room)
	c.log.Info("chat: join", "socket", s.ID(), "nickname", profile(s).Nickname, "room", room)
	return RoomInfo{Room: room, Users: c.publishUsers(s.Context(), room)}, nil
}

func (c *server) leave(s *rally.Socket, room string) (bool, error) {
	room, err := cleanRoom(room)
	if err != nil {
		return false, err
	}
	s.Leave(roomPrefix + room)
	c.publishUsers(s.Context(), room)
	return true, nil
}

func (c *server) chatMessage(s *rally.Socket, room, text string) (Message, error) {
	if err := checkJoined(s, room); err != nil {
		return Message{}, err
	}
	text, err := cleanText(text)
	if err != nil {
		return Message{}, err
	}
	m := Message{Room: room, From: profile(s).Nickname, ID: s.ID(), Text: text, Time: time.Now().UTC()}
	// The others in the room get the event; the sender gets the same
	// Message as the ack.
	return m, s.To(roomPrefix+room).Emit("chat message", m)
}

// upload is the second argument of the "file" event.
type upload struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Data []byte `json:"data"` // a binary attachment: ArrayBuffer, Uint8Array, Buffer
}

// receipt acknowledges a file.
type receipt struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int    `json:"size"`
}

func (c *server) file(s *rally.Socket, room string, up upload) (*receipt, error) {
	if err := checkJoined(s, room); err != nil {
		return nil, err
	}
	if len(up.Data) == 0 || len(up.Data) > MaxFile {
		return nil, invalid("a file holds 1 to %d bytes", MaxFile)
	}
	f := File{Room: room, From: profile(s).Nickname, ID: s.ID(), Name: cleanFileName(up.Name),
		Type: up.Type, Size: len(up.Data), Data: up.Data}
	c.log.Info("chat: file", "socket", s.ID(), "room", room, "name", f.Name, "type", f.Type, "bytes", f.Size)
	if err := s.To(roomPrefix+room).Emit("file", f); err != nil {
		return nil, err
	}
	return &receipt{Name: f.Name, Type: f.Type, Size: f.Size}, nil
}

// checkJoined refuses to post to a room the socket has not joined.
func checkJoined(s *rally.Socket, room string) error {
	if !slices.Contains(s.Rooms(), roomPrefix+room) {
		return invalid("join room %q first", room)
	}
	return nil
}

// publishUsers sends the room's user list to everyone in it and returns
// it.
func (c *server) publishUsers(ctx context.Context, room string) []Member {
	users, err := Users(ctx, c.hub, room)
	if err != nil {
		c.log.Warn("chat: listing users", "room", room, "error", err)
		return nil
	}
	if err := c.hub.To(roomPrefix+room).Emit("users", RoomInfo{Room: room, Users: users}); err != nil {
		c.log.Warn("chat: sending the user list", "room", room, "error", err)
	}
	return users
}

// Users returns the connected members of a room of a hub made by NewHub,
// sorted by nickname.
func Users(ctx context.Context, hub *rally.Hub, room string) ([]Member, error) {
	room, err := cleanRoom(room)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	sockets, err := hub.In(roomPrefix + room).FetchSockets(ctx)
	if err != nil {
		return nil, err
	}
	users := make([]Member, 0, len(sockets))
	for _, rs := range sockets {
		users = append(users, Member{ID: rs.ID, Profile: profileOf(rs.Data)})
	}
	slices.SortFunc(users, func(a, b Member) int {
		return cmp.Or(strings.Compare(a.Nickname, b.Nickname), strings.Compare(a.ID, b.ID))
	})
	return users, nil
}

// Announce sends a text message from the server to a room of a hub made
// by NewHub.
func Announce(hub *rally.Hub, room, text string) (Message, error) {
	room, err := cleanRoom(room)
	if err != nil {
		return Message{}, err
	}
	if text, err = cleanText(text); err != nil {
		return Message{}, err
	}
	m := Message{Room: room, From: "server", Text: text, Time: time.Now().UTC()}
	return m, hub.To(roomPrefix+room).Emit("chat message", m)
}

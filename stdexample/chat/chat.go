// Package chat is the chat server shared by rally's two example apps,
// stdexample (net/http) and chiexample (chi): a rally Hub with nicknames,
// rooms, a user list per room, text messages and binary files (hub.go,
// rooms.go), the handshake and connect middleware that tell members from
// guests (auth.go), the browser page (web.go, web/), and the serving loop
// that shuts down gracefully (serve.go). The apps only route HTTP requests
// to it.
//
// The events, as the browser page (web/app.js) uses them:
//
//	client → server                           ack
//	"set nickname" (name)                     the nickname
//	"join" (room)                             {room, users}
//	"leave" (room)                            true
//	"chat message" (room, text)               the Message sent to the room
//	"file" (room, {name, type, data: binary}) {name, type, size}
//	"message" (args...)                       — echoed back as "message"
//	"salutations" (text, object, binary)      — logged
//
//	server → client
//	"greetings" ("Hey!", {"ms": "jane"}, binary 04 03 02 01), on connect
//	"users" ({room, users}), when a room's members or their nicknames change
//	"chat message" (Message), "file" (File), from the others in a room
//
// An event that fails is acknowledged with {"error": "..."}.
//
// Rooms chosen by clients are kept under a "room:" prefix, so that a
// client can never join the room named after another socket's id.
package chat

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rallyhq/rally"
)

// Limits on what clients send.
const (
	MaxNickname = 24   // characters
	MaxRoom     = 32   // characters
	MaxText     = 2000 // characters
	// MaxFile is the largest file, in bytes: under the hub's 1e6-byte
	// message limit even base64-encoded for long-polling.
	MaxFile = 512 << 10
)

// Config configures the chat; the apps read it from their command line
// with ParseFlags.
type Config struct {
	// Token is the secret that makes a client a member. Clients send it
	// in the handshake request (see Authenticate) or in their auth
	// payload ({"token": ...}). When empty, nobody is a member.
	Token string
	// RequireToken refuses guests: clients without a valid token get a
	// connect_error "authentication required".
	RequireToken bool
	// Logger receives the hub's, the chat's and the HTTP requests' logs;
	// nil means slog.Default().
	Logger *slog.Logger

	// WebDir is the directory of the page's package.json, where npm
	// installs socket.io-client (see ClientBundle).
	WebDir string
	// Redis is the address of a Redis server that several instances of the
	// app share, so that they serve one chat; "" keeps the chat in this
	// process. See UseRedis.
	Redis string
	// Adapter, when set, is the hub's rally.Options.Adapter; UseRedis sets
	// it from Redis.
	Adapter func(*rally.LocalAdapter) rally.Adapter
	// Addr is the address ListenAndServe listens on.
	Addr string
	// GenerateID, when set, is the hub's rally.Options.GenerateID: it
	// makes the engine session ids (stdexample uses UUIDs).
	GenerateID func(*http.Request) string
}

// Profile is what the chat knows of a connected socket. It is stored with
// s.SetData and replaced as a whole when it changes, so that readers of
// s.Data() on other goroutines see a consistent value.
type Profile struct {
	Nickname string `json:"nickname"`
	Member   bool   `json:"member"`
}

// Member is an entry of a room's user list.
type Member struct {
	ID string `json:"id"` // socket id
	Profile
}

// RoomInfo answers "join" and is the payload of "users".
type RoomInfo struct {
	Room  string   `json:"room"`
	Users []Member `json:"users"`
}

// Message is a text message sent to a room.
type Message struct {
	Room string    `json:"room"`
	From string    `json:"from"` // nickname
	ID   string    `json:"id"`   // sender's socket id; "" for the server
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// File is a file sent to a room. Data is a []byte: rally sends it as a
// binary attachment, and the browser receives an ArrayBuffer.
type File struct {
	Room string `json:"room"`
	From string `json:"from"`
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"` // MIME type, as the browser guessed it
	Size int    `json:"size"`
	Data []byte `json:"data"`
}

// InvalidError reports input the chat refuses: a nickname, room name,
// message or file out of bounds.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error {
	return &InvalidError{msg: fmt.Sprintf(format, args...)}
}

func cleanNickname(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > MaxNickname || !printable(name) {
		return "", invalid("a nickname holds 1 to %d printable characters", MaxNickname)
	}
	return name, nil
}

func cleanRoom(room string) (string, error) {
	room = strings.TrimSpace(room)
	if room == "" || utf8.RuneCountInString(room) > MaxRoom || !printable(room) {
		return "", invalid("a room name holds 1 to %d printable characters", MaxRoom)
	}
	return room, nil
}

func cleanText(text string) (string, error) {
	text = strings.TrimSpace(text)
	if text == "" || utf8.RuneCountInString(text) > MaxText || !utf8.ValidString(text) {
		return "", invalid("a message holds 1 to %d characters", MaxText)
	}
	return text, nil
}

// cleanFileName returns a printable name of at most 128 characters, or
// "file".
func cleanFileName(name string) string {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 128 || !printable(name) {
		return "file"
	}
	return name
}

func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

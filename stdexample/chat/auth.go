package chat

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/rallyhq/rally"
)

// User is who a connection belongs to, as its token said. The zero value
// is a guest.
type User struct {
	// Member is true when the client showed the server's token; guests
	// came without one.
	Member bool
}

type userKey struct{}

// UserFrom returns the user that Authenticate put in ctx, or a guest when
// ctx holds none. Socket handlers call it with s.Context(), which carries
// the values of the handshake request's context.
func UserFrom(ctx context.Context) User {
	u, _ := ctx.Value(userKey{}).(User)
	return u
}

// Authenticate is handshake middleware: it runs on every HTTP request of
// the Socket.IO connection (handshake, polls, websocket upgrade) before the
// hub sees it. A request carrying token — as "Authorization: Bearer
// <token>", which Node and Go clients can set, or in the "token" query
// parameter, which is all a browser can send on a websocket — belongs to a
// member. A request without a token belongs to a guest; a request with any
// other token is refused with 403 and never reaches the hub.
//
// Either way the User is stored in the request's context, where connect
// middleware and event handlers find it with UserFrom(s.Context()).
//
// A token in the query shows up in the URLs of proxies' logs; prefer the
// auth payload, checked by the connect middleware of NewHub, when an
// HTTP-level decision is not needed.
func Authenticate(token string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var u User
			if got := requestToken(r); got != "" {
				if !validToken(token, got) {
					// The Engine.IO error form, so clients that parse it
					// see a reason; the official client reports the
					// status as err.description.
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusForbidden)
					w.Write([]byte(`{"code":4,"message":"invalid token"}`))
					return
				}
				u.Member = true
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
		})
	}
}

// requestToken returns the token of a request, or "".
func requestToken(r *http.Request) string {
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(h)
	}
	return r.URL.Query().Get("token")
}

// validToken compares tokens in constant time. No token is valid when the
// server has none.
func validToken(want, got string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// authPayload is the auth option of a client, every field optional:
// io({auth: {token: "...", nickname: "..."}}).
type authPayload struct {
	Token    string `json:"token"`
	Nickname string `json:"nickname"`
}

// admit is the connect middleware (hub.Use): it runs when the client's
// CONNECT packet arrives, after the HTTP middleware let the connection
// in, and decides who joins the chat. A *rally.ConnectError refuses the
// client: its connect_error handler gets err.message and err.data.
func (c *server) admit(s *rally.Socket) error {
	u := UserFrom(s.Context()) // from Authenticate, on the HTTP request
	var auth authPayload
	if s.Handshake().Auth != nil {
		if err := s.Handshake().DecodeAuth(&auth); err != nil {
			return &rally.ConnectError{Message: "malformed auth payload", Data: errCode("bad_auth")}
		}
	}
	if auth.Token != "" {
		if !validToken(c.cfg.Token, auth.Token) {
			return &rally.ConnectError{Message: "invalid token", Data: errCode("invalid_token")}
		}
		u.Member = true
	}
	if !u.Member && c.cfg.RequireToken {
		return &rally.ConnectError{Message: "authentication required", Data: errCode("auth_required")}
	}
	nick := defaultNickname(u, s.ID())
	if auth.Nickname != "" {
		var err error
		if nick, err = cleanNickname(auth.Nickname); err != nil {
			return &rally.ConnectError{Message: err.Error(), Data: errCode("bad_nickname")}
		}
	}
	s.SetData(Profile{Nickname: nick, Member: u.Member})
	return nil
}

func errCode(code string) map[string]string { return map[string]string{"code": code} }

// defaultNickname is "guest-" or "member-" and the start of the socket id.
func defaultNickname(u User, id string) string {
	prefix := "guest-"
	if u.Member {
		prefix = "member-"
	}
	return prefix + id[:min(4, len(id))]
}

package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/rallyhq/rally"
)

// Store keeps the session ids given to the UI after a basic login, which
// it sends back instead of the password when it reconnects (Node's
// InMemoryStore and RedisStore). Its methods may be called concurrently.
type Store interface {
	// SessionExists reports whether id is a live session.
	SessionExists(ctx context.Context, id string) (bool, error)
	// SaveSession records a new session.
	SaveSession(ctx context.Context, id string) error
}

// DefaultSessionDuration is how long a session of NewMemoryStore lasts
// when no duration is given: a day, as Node's RedisStore.
const DefaultSessionDuration = 24 * time.Hour

// maxMemorySessions bounds the sessions a memory store keeps; past it the
// oldest is forgotten (its UI logs in again).
const maxMemorySessions = 10000

// NewMemoryStore returns a Store that keeps sessions in memory for d
// (DefaultSessionDuration when d <= 0), at most 10,000 of them. Unlike
// Node's InMemoryStore, whose sessions last as long as the process,
// sessions expire.
func NewMemoryStore(d time.Duration) Store {
	if d <= 0 {
		d = DefaultSessionDuration
	}
	return &memoryStore{ttl: d, expiry: make(map[string]time.Time)}
}

type memoryStore struct {
	ttl    time.Duration
	mu     sync.Mutex
	expiry map[string]time.Time
	order  []string // ids by creation, for eviction
}

func (m *memoryStore) SessionExists(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.expiry[id]
	if ok && time.Now().After(exp) {
		delete(m.expiry, id)
		ok = false
	}
	return ok, nil
}

func (m *memoryStore) SaveSession(_ context.Context, id string) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	// Forget expired sessions from the oldest on, and the oldest live
	// ones beyond the bound.
	for len(m.order) > 0 {
		old := m.order[0]
		exp, ok := m.expiry[old]
		if ok && now.Before(exp) && len(m.expiry) < maxMemorySessions {
			break
		}
		delete(m.expiry, old)
		m.order = m.order[1:]
	}
	m.expiry[id] = now.Add(m.ttl)
	m.order = append(m.order, id)
	return nil
}

// errInvalidCredentials is the refusal the UI recognizes (it then shows
// its login form again).
var errInvalidCredentials = &rally.ConnectError{Message: "invalid credentials"}

// authenticate is the admin namespace's connect middleware: without
// authentication every socket is let in; with basic authentication, a
// socket with a live session id, or with the right username and password
// (it then gets a new session id once connected).
func (in *Instrumentation) authenticate(s *rally.Socket) error {
	if in.closed.Load() {
		return &rally.ConnectError{Message: "admin: closed"}
	}
	if in.opts.Auth == nil {
		return nil
	}
	var auth struct {
		SessionID *string `json:"sessionId"`
		Username  *string `json:"username"`
		Password  *string `json:"password"`
	}
	if len(s.Handshake().Auth) > 0 {
		if err := s.Handshake().DecodeAuth(&auth); err != nil {
			return errInvalidCredentials
		}
	}
	ctx := s.Context()
	if auth.SessionID != nil && *auth.SessionID != "" {
		ok, err := in.opts.Store.SessionExists(ctx, *auth.SessionID)
		if err == nil && ok {
			return nil
		}
	}
	if auth.Username == nil || auth.Password == nil {
		return errInvalidCredentials
	}
	userOK := subtle.ConstantTimeCompare([]byte(*auth.Username), []byte(in.opts.Auth.Username)) == 1
	// The hash is compared even for a wrong username, so that the time
	// taken does not tell which was wrong.
	passOK := bcrypt.CompareHashAndPassword([]byte(in.opts.Auth.PasswordHash), []byte(*auth.Password)) == nil
	if !userOK || !passOK {
		return errInvalidCredentials
	}
	id := randomID()
	if err := in.opts.Store.SaveSession(ctx, id); err != nil {
		return errInvalidCredentials
	}
	now := time.Now()
	in.sessMu.Lock()
	for old, p := range in.sessions {
		// a socket let in that never connected: forget its session
		if now.Sub(p.made) > time.Minute {
			delete(in.sessions, old)
		}
	}
	in.sessions[s] = pendingSession{id: id, made: now}
	in.sessMu.Unlock()
	return nil
}

// randomID returns 16 hex digits from crypto/rand, as Node's session ids.
func randomID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

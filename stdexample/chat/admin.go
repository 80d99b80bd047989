package chat

import (
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/crypto/bcrypt"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/admin"
)

// WithAdmin instruments hub for the official Socket.IO Admin UI when the
// environment variable ADMIN_PASSWORD is set: the UI logs in as "admin"
// with that password (kept only as its bcrypt hash) on the admin namespace
// "/admin" of the hub's endpoint, /socket.io/. When ADMIN_UI_DIR names a
// local copy of the UI (the ui/dist directory of the npm package
// @socket.io/admin-ui), it is served at /admin-ui/:
//
//	npm install --prefix /tmp/ui @socket.io/admin-ui@0.5.1
//	ADMIN_PASSWORD=changeme ADMIN_UI_DIR=/tmp/ui/node_modules/@socket.io/admin-ui/ui/dist go run ./stdexample (or ./chiexample)
//
// then open http://localhost:3000/admin-ui/ and connect to
// http://localhost:3000. Without ADMIN_PASSWORD, next is returned as it is.
func WithAdmin(next http.Handler, hub *rally.Hub, logger *slog.Logger) http.Handler {
	password := os.Getenv("ADMIN_PASSWORD")
	if password == "" {
		return next
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		logger.Error("admin UI", "error", err)
		return next
	}
	if _, err := admin.Instrument(hub, &admin.Options{
		Auth: &admin.BasicAuth{Username: "admin", PasswordHash: string(hash)},
		// Development mode reports every socket and event; production
		// mode only the counts.
		Mode: admin.Production,
	}); err != nil {
		logger.Error("admin UI", "error", err)
		return next
	}
	dir := os.Getenv("ADMIN_UI_DIR")
	if dir == "" {
		logger.Info("admin UI: namespace /admin (use https://admin.socket.io with AllowedOrigins, or set ADMIN_UI_DIR)")
		return next
	}
	mux := http.NewServeMux()
	mux.Handle("/admin-ui/", http.StripPrefix("/admin-ui/", http.FileServer(http.Dir(dir))))
	mux.Handle("/", next)
	logger.Info("admin UI: /admin-ui/")
	return mux
}

package chat

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
)

// The page is plain HTML, CSS and JavaScript, built into the binary.
//
//go:embed web/index.html web/app.js web/style.css
var webFiles embed.FS

// BundlePath is where apps serve the Socket.IO client: the page loads it
// from there.
const BundlePath = "/vendor/socket.io.min.js"

// Page serves the chat page: index.html at "/", app.js and style.css next
// to it. Mount it at "/"; it answers 404 for other paths.
func Page() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// DefaultWebDir returns the directory holding the page's package.json,
// where "npm ci" installs socket.io-client: next to this source file when
// the binary was built from source here (go run, go test), else
// stdexample/chat/web under the working directory.
func DefaultWebDir() string {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "web")
	}
	return filepath.Join("stdexample", "chat", "web")
}

// BundleFile returns the path of the browser bundle inside the npm package
// installed in webDir.
func BundleFile(webDir string) string {
	return filepath.Join(webDir, "node_modules", "socket.io-client", "dist", "socket.io.min.js")
}

// ClientBundle serves the official socket.io-client browser bundle from
// the npm package installed in webDir (see DefaultWebDir), so the page
// works without internet access. The file is read at each request: an
// install done while the server runs is picked up.
//
// When the package is not installed, ClientBundle logs it at once and
// answers 503 with the command that installs it; the page shows that
// text.
func ClientBundle(webDir string, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	file := BundleFile(webDir)
	if _, err := os.Stat(file); err != nil {
		logger.Error("chat: "+MissingBundle(webDir), "error", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(file)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				logger.Error("chat: opening the client bundle", "error", err)
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, MissingBundle(webDir))
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			http.Error(w, "reading the client bundle", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, "socket.io.min.js", st.ModTime(), f)
	})
}

// MissingBundle is the message of a missing client bundle, with the
// command that installs it.
func MissingBundle(webDir string) string {
	dir := webDir
	if abs, err := filepath.Abs(webDir); err == nil {
		dir = abs
	}
	return fmt.Sprintf("the socket.io-client browser bundle is not installed (%s is missing); install it with: npm ci --prefix %s",
		BundleFile(dir), dir)
}

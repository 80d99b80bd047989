// Package serverkit is what the Go peer servers share besides their
// Socket.IO library: flags, the benchmark control endpoints of the contract
// (see bench/README.md) and the payloads.
package serverkit

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/rallyhq/rally/bench/internal/proc"
)

// Blast is the argument of the "blast" event: broadcast N "tick" events
// whose "p" field holds Pad bytes and whose "i" fields count from From
// (0 when absent): From, From+1, … From+N-1.
type Blast struct {
	N    int `json:"n"`
	Pad  int `json:"pad"`
	From int `json:"from"`
}

// Tick is the payload of each broadcast event: T is the wall-clock time in
// microseconds since the epoch when the server emitted it, I its number
// (see Blast).
type Tick struct {
	T int64  `json:"t"`
	I int    `json:"i"`
	P string `json:"p"`
}

// Echo is the argument of the "echo" event, answered unchanged as the ack.
type Echo struct {
	T int64  `json:"t"`
	I int64  `json:"i"`
	P string `json:"p"`
}

// NowMicros is the timestamp put in ticks.
func NowMicros() int64 { return time.Now().UnixMicro() }

var (
	padMu sync.Mutex
	pads  = map[int]string{}
)

// Pad returns a string of n 'x', cached.
func Pad(n int) string {
	if n < 0 || n > 1<<20 {
		n = 0
	}
	padMu.Lock()
	defer padMu.Unlock()
	p, ok := pads[n]
	if !ok {
		p = strings.Repeat("x", n)
		pads[n] = p
	}
	return p
}

// Server describes one peer server to Run.
type Server struct {
	// Name is reported by /bench/stats.
	Name string
	// Module is the Go module whose version /bench/stats reports.
	Module string
	// Handler serves /socket.io/.
	Handler http.Handler
	// Clients returns the number of connected Socket.IO sockets.
	Clients func() int64
	// Recovery says that the server honours -recovery (see Recovery);
	// Run refuses the flag otherwise.
	Recovery bool
	// Msgpack says that the server honours -parser msgpack (see
	// ParserName); Run refuses it otherwise.
	Msgpack bool
	// Redis says that the server shares broadcasts through a Redis
	// adapter on the -redis URL (see RedisURL); Run refuses -redis
	// otherwise.
	Redis bool
}

// The flags every peer takes.
var (
	addr       = flag.String("addr", "127.0.0.1:3000", "listen address (loopback)")
	withPprof  = flag.Bool("pprof", false, "serve net/http/pprof at /debug/pprof/")
	recoveryOn = flag.Bool("recovery", false, "turn connection state recovery on, with the library's defaults (servers that have it)")
	parserName = flag.String("parser", "default", `Socket.IO parser: "default" or "msgpack" (servers that have it)`)
	redisURL   = flag.String("redis", "", "share broadcasts with the other servers through a Redis adapter at this URL, redis://127.0.0.1:PORT (servers that have it)")
	parseFlags = sync.OnceFunc(flag.Parse)
)

// ParserName parses the flags and returns the -parser value: "default"
// (the library's default parser) or "msgpack" (socket.io-msgpack-parser's
// format). A server that reads it sets Server.Msgpack.
func ParserName() string {
	parseFlags()
	return *parserName
}

// Recovery parses the flags and reports whether -recovery was given: the
// server is to turn connection state recovery on. A server that reads it
// sets Server.Recovery.
func Recovery() bool {
	parseFlags()
	return *recoveryOn
}

// RedisURL parses the flags and returns the -redis value: the URL of the
// Redis through which the server shares broadcasts with the others, or ""
// for none. A server that reads it sets Server.Redis.
func RedisURL() string {
	parseFlags()
	return *redisURL
}

// Run parses the flags (-addr, -pprof, -recovery, -parser, -redis), mounts the server at
// /socket.io/ next to the control endpoints, and serves until killed.
func Run(s Server) {
	parseFlags()
	if *recoveryOn && !s.Recovery {
		log.Fatalf("%s: -recovery is not supported", s.Name)
	}
	if *redisURL != "" && !s.Redis {
		log.Fatalf("%s: -redis is not supported", s.Name)
	}
	switch {
	case *parserName == "default":
	case *parserName == "msgpack" && s.Msgpack:
	case *parserName == "msgpack":
		log.Fatalf("%s: -parser msgpack is not supported", s.Name)
	default:
		log.Fatalf("%s: unknown -parser %q", s.Name, *parserName)
	}

	mux := http.NewServeMux()
	mux.Handle("/socket.io/", s.Handler)
	version := moduleVersion(s.Module)
	mux.HandleFunc("GET /bench/stats", func(w http.ResponseWriter, r *http.Request) {
		rss, _ := proc.RSS(0)
		st := map[string]any{
			"server":     s.Name,
			"version":    version,
			"pid":        os.Getpid(),
			"clients":    s.Clients(),
			"rss_bytes":  rss,
			"goroutines": runtime.NumGoroutine(),
			"gomaxprocs": runtime.GOMAXPROCS(0),
			"runtime":    runtime.Version(),
			"recovery":   *recoveryOn,
			"parser":     *parserName,
			"redis":      *redisURL != "",
		}
		if r.URL.Query().Has("mem") {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			st["heap_inuse"] = ms.HeapInuse
			st["stack_inuse"] = ms.StackInuse
			st["sys"] = ms.Sys
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /bench/gc", func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		w.WriteHeader(http.StatusNoContent)
	})
	if *withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}

	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost" && host != "::1") {
		log.Fatalf("%s: -addr must be a loopback address, got %q", s.Name, *addr)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("%s: %v", s.Name, err)
	}
	fmt.Fprintf(os.Stderr, "%s %s listening on %s (GOMAXPROCS=%d)\n", s.Name, version, ln.Addr(), runtime.GOMAXPROCS(0))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// moduleVersion returns the version of module path this binary was built
// with, "(devel)" for the main module or a replaced one.
func moduleVersion(path string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok || path == "" {
		return ""
	}
	for _, m := range bi.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return "(" + m.Replace.Path + ")"
			}
			return m.Version
		}
	}
	return ""
}

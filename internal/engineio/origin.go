package engineio

import (
	"net/http"
	"net/url"
	"path"
	"strings"
)

// originPolicy decides which browser origins may use the server, on both
// transports, and writes the CORS headers of polling responses.
type originPolicy struct {
	patterns    []string // host patterns, or scheme://host patterns
	any         bool     // the single pattern "*"
	credentials bool
}

func newOriginPolicy(patterns []string, credentials bool) originPolicy {
	p := originPolicy{credentials: credentials}
	for _, pat := range patterns {
		if pat == "*" {
			p.any = true
			continue
		}
		p.patterns = append(p.patterns, strings.ToLower(pat))
	}
	return p
}

// allowed reports whether a request may proceed: it has no Origin header
// (not a browser, or a same-origin navigation), its origin is the server's
// own host, or the origin matches a pattern.
func (p originPolicy) allowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	host := strings.ToLower(u.Host)
	if host == strings.ToLower(r.Host) {
		return true
	}
	for _, pat := range p.patterns {
		target := host
		if strings.Contains(pat, "://") {
			target = strings.ToLower(u.Scheme) + "://" + host
		}
		if ok, _ := path.Match(pat, target); ok {
			return true
		}
	}
	return false
}

// setCORS adds the CORS headers for an allowed cross-origin request. It
// echoes the request's origin (also under "*", so that credentials work)
// and varies on it.
func (p originPolicy) setCORS(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Allow-Origin", origin)
	if p.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
}

// preflight answers a CORS preflight request.
func (p originPolicy) preflight(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET,POST")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

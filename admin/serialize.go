package admin

import (
	"context"
	"strings"
	"time"

	"github.com/rallyhq/rally"
)

// serializedSocket is a socket as the UI gets it (Node's serialize).
type serializedSocket struct {
	ID string `json:"id"`
	// ClientID is the first 12 characters of the engine session id; it is
	// unknown (left out) for a rally socket on another server.
	ClientID  string              `json:"clientId,omitempty"`
	Transport string              `json:"transport,omitempty"`
	Nsp       string              `json:"nsp"`
	Data      any                 `json:"data"`
	Handshake serializedHandshake `json:"handshake"`
	Rooms     []string            `json:"rooms"`
}

type serializedHandshake struct {
	Address string            `json:"address"`
	Headers map[string]string `json:"headers"`
	Query   map[string]any    `json:"query"`
	Issued  int64             `json:"issued"`
	Secure  bool              `json:"secure"`
	Time    string            `json:"time"`
	URL     string            `json:"url"`
	Xdomain bool              `json:"xdomain"`
}

// shortID is the clientId the UI shows: Node's first 12 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// dataOf is a socket's data as the UI shows it: {} when there is none,
// and without the "_admin" key Node's instrumentation adds.
func dataOf(v any) any {
	switch d := v.(type) {
	case nil:
		return map[string]any{}
	case map[string]any:
		if _, ok := d["_admin"]; ok {
			c := make(map[string]any, len(d))
			for k, v := range d {
				if k != "_admin" {
					c[k] = v
				}
			}
			return c
		}
	}
	return v
}

// serializeHandshake is Node's handshake object: header names in lower
// case (with host), repeated values joined as Node joins them, the query
// as an object, times in Node's forms.
func serializeHandshake(h *rally.Handshake) serializedHandshake {
	if h == nil {
		return serializedHandshake{Headers: map[string]string{}, Query: map[string]any{}}
	}
	headers := make(map[string]string, len(h.Header)+1)
	if h.Host != "" {
		headers["host"] = h.Host
	}
	for k, vs := range h.Header {
		headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	query := make(map[string]any, len(h.Query))
	for k, vs := range h.Query {
		if len(vs) == 1 {
			query[k] = vs[0]
		} else {
			query[k] = vs
		}
	}
	addr := h.Address
	if v := headers["cf-connecting-ip"]; v != "" {
		addr = v
	} else if v := headers["x-forwarded-for"]; v != "" {
		addr = v
	}
	return serializedHandshake{
		Address: addr,
		Headers: headers,
		Query:   query,
		Issued:  h.Issued.UnixMilli(),
		Secure:  h.Secure,
		Time:    jsDateString(h.Issued),
		URL:     h.URL,
		Xdomain: h.CrossOrigin,
	}
}

// jsDateString formats t as JavaScript's Date.prototype.toString does,
// which Node's handshake.time holds.
func jsDateString(t time.Time) string {
	name, _ := t.Zone()
	return t.Format("Mon Jan 02 2006 15:04:05 GMT-0700") + " (" + name + ")"
}

// allSockets lists the sockets of every namespace, on every server (an
// adapter's FetchSockets), for all_sockets.
func (in *Instrumentation) allSockets(ctx context.Context) []serializedSocket {
	out := []serializedSocket{}
	for _, n := range in.hub.Namespaces() {
		remote, _ := n.All().FetchSockets(ctx) // what answered, if not all
		for _, r := range remote {
			ser := serializedSocket{
				ID: r.ID, Nsp: n.Name(), Data: dataOf(r.Data),
				Handshake: serializeHandshake(r.Handshake), Rooms: r.Rooms,
			}
			if ser.Rooms == nil {
				ser.Rooms = []string{}
			}
			if s := n.Socket(r.ID); s != nil {
				ser.ClientID, ser.Transport = shortID(s.ConnID()), s.Transport()
			} else if d, ok := r.Data.(map[string]any); ok {
				// a socket of a Node server: its instrumentation keeps them
				if a, ok := d["_admin"].(map[string]any); ok {
					ser.ClientID, _ = a["clientId"].(string)
					ser.Transport, _ = a["transport"].(string)
				}
			}
			out = append(out, ser)
		}
	}
	return out
}

package wire

import (
	"encoding/json"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/rallyhq/rally"
)

// NodeHandshake is the handshake object of a Socket.IO socket as the Node
// server builds it, and as fetchSockets answers carry it.
type NodeHandshake struct {
	Headers map[string]json.RawMessage `json:"headers"`
	Time    string                     `json:"time"`
	Address string                     `json:"address"`
	XDomain bool                       `json:"xdomain"`
	Secure  bool                       `json:"secure"`
	Issued  float64                    `json:"issued"`
	URL     string                     `json:"url"`
	Query   map[string]json.RawMessage `json:"query"`
	Auth    json.RawMessage            `json:"auth"`
}

// jsDateLayout is the form of JavaScript's Date.prototype.toString, in UTC.
const jsDateLayout = "Mon Jan 02 2006 15:04:05 GMT-0700"

// ToNodeHandshake describes a rally handshake as Node's handshake object:
// lower-cased header names, each header's values joined as Node's HTTP
// server joins them, the host among them (net/http keeps it out of
// Header), the query's single values as strings, auth {} when the client
// sent none.
func ToNodeHandshake(h *rally.Handshake) *NodeHandshake {
	if h == nil {
		h = &rally.Handshake{}
	}
	nh := &NodeHandshake{
		Headers: make(map[string]json.RawMessage, len(h.Header)),
		Address: h.Address,
		XDomain: h.CrossOrigin,
		Secure:  h.Secure,
		URL:     h.URL,
		Query:   make(map[string]json.RawMessage, len(h.Query)),
		Auth:    h.Auth,
	}
	if !h.Issued.IsZero() {
		nh.Time = h.Issued.UTC().Format(jsDateLayout) + " (Coordinated Universal Time)"
		nh.Issued = float64(h.Issued.UnixMilli())
	}
	if len(nh.Auth) == 0 {
		nh.Auth = json.RawMessage("{}")
	}
	for name, values := range h.Header {
		name = strings.ToLower(name)
		var v any
		switch {
		case name == "set-cookie":
			v = values
		case name == "cookie":
			v = strings.Join(values, "; ")
		default:
			v = strings.Join(values, ", ")
		}
		nh.Headers[name], _ = json.Marshal(v)
	}
	if h.Host != "" {
		nh.Headers["host"], _ = json.Marshal(h.Host)
	}
	for name, values := range h.Query {
		var v any = values
		if len(values) == 1 {
			v = values[0]
		}
		nh.Query[name], _ = json.Marshal(v)
	}
	return nh
}

// FromNodeHandshake converts Node's handshake object into a rally
// handshake. Header names are canonicalized, so Header.Get works; Host is
// the host header, which Header keeps too.
func FromNodeHandshake(nh *NodeHandshake) *rally.Handshake {
	h := &rally.Handshake{
		Header:      make(http.Header, len(nh.Headers)),
		Query:       make(url.Values, len(nh.Query)),
		Address:     nh.Address,
		Secure:      nh.Secure,
		CrossOrigin: nh.XDomain,
		URL:         nh.URL,
	}
	if len(nh.Auth) > 0 && string(nh.Auth) != "null" {
		h.Auth = nh.Auth
	}
	switch {
	case nh.Issued > 0:
		h.Issued = time.UnixMilli(int64(nh.Issued))
	case nh.Time != "":
		// "Thu Nov 26 2026 21:50:18 GMT+0000 (Coordinated Universal Time)"
		s, _, _ := strings.Cut(nh.Time, " (")
		if t, err := time.Parse(jsDateLayout, s); err == nil {
			h.Issued = t
		}
	}
	for name, raw := range nh.Headers {
		h.Header[textproto.CanonicalMIMEHeaderKey(name)] = stringValues(raw)
	}
	if host := h.Header["Host"]; len(host) > 0 {
		h.Host = host[0]
	}
	for name, raw := range nh.Query {
		h.Query[name] = stringValues(raw)
	}
	return h
}

// stringValues reads a string or an array of strings.
func stringValues(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return []string{strings.Trim(string(raw), `"`)}
}

// RemoteSocket is a socket in a fetchSockets answer.
type RemoteSocket struct {
	ID        string          `json:"id"`
	Handshake *NodeHandshake  `json:"handshake"`
	Rooms     RoomList        `json:"rooms"`
	Data      json.RawMessage `json:"data,omitempty"`
}

// ToRemoteSocket describes a local socket for a fetchSockets answer. Its
// data travels as JSON; a socket without data has {}, as a Node socket
// starts with; data that cannot be encoded is left out.
func ToRemoteSocket(info rally.SocketInfo) (RemoteSocket, error) {
	rs := RemoteSocket{ID: info.ID, Handshake: ToNodeHandshake(info.Handshake), Rooms: Strs(info.Rooms),
		Data: json.RawMessage("{}")}
	var err error
	if info.Data != nil {
		rs.Data, err = json.Marshal(info.Data)
		if err != nil {
			rs.Data = nil
		}
	}
	return rs, err
}

// FromRemoteSocket converts a socket of a fetchSockets answer.
func FromRemoteSocket(rs RemoteSocket) rally.SocketInfo {
	info := rally.SocketInfo{ID: rs.ID, Rooms: []string(rs.Rooms)}
	if rs.Handshake != nil {
		info.Handshake = FromNodeHandshake(rs.Handshake)
	} else {
		info.Handshake = &rally.Handshake{}
	}
	if len(rs.Data) > 0 {
		json.Unmarshal(rs.Data, &info.Data)
	}
	return info
}

// RoomList is a list of room names that accepts numbers too (a Node
// application may join room 123), as their decimal form.
type RoomList []string

func (r *RoomList) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make([]string, 0, len(raw))
	for _, e := range raw {
		var s string
		if json.Unmarshal(e, &s) != nil {
			var n json.Number
			if json.Unmarshal(e, &n) != nil {
				continue
			}
			s = n.String()
		}
		out = append(out, s)
	}
	*r = out
	return nil
}

package wsclient

import (
	"bytes"
	"testing"
)

func TestFraming(t *testing.T) {
	if got := AppendEvent(nil, 12, "echo", []byte(`{"a":1}`)); string(got) != `4212["echo",{"a":1}]` {
		t.Errorf("AppendEvent = %s", got)
	}
	if got := AppendEvent(nil, -1, "blast", []byte(`{"n":2}`)); string(got) != `42["blast",{"n":2}]` {
		t.Errorf("AppendEvent = %s", got)
	}
	for m, want := range map[string]int64{`437[{"t":1}]`: 7, `43123[]`: 123} {
		if id, ok := AckID([]byte(m)); !ok || id != want {
			t.Errorf("AckID(%s) = %d, %v", m, id, ok)
		}
	}
	for _, m := range []string{`42[]`, `43`, `43x[]`, `43[]`} {
		if _, ok := AckID([]byte(m)); ok {
			t.Errorf("AckID(%s) ok", m)
		}
	}
	tick := []byte(`42["tick",{"i":3,"t":1700000000123456,"p":"xx"}]`)
	if v, ok := IntField(tick, "t"); !ok || v != 1700000000123456 {
		t.Errorf("IntField t = %d, %v", v, ok)
	}
	if _, ok := IntField(tick, "z"); ok {
		t.Error("IntField found a missing key")
	}
}

func TestMaskedFrame(t *testing.T) {
	c := &Conn{mask: 0x12345679}
	c.wbuf = c.appendHeader(nil, OpText, 3)
	start := len(c.wbuf)
	c.wbuf = append(c.wbuf, "abc"...)
	c.maskTail(start)
	if c.wbuf[0] != 0x81 || c.wbuf[1] != 0x83 {
		t.Fatalf("header % x", c.wbuf[:2])
	}
	key := [4]byte(c.wbuf[2:6])
	payload := bytes.Clone(c.wbuf[6:])
	unmask(payload, key)
	if string(payload) != "abc" {
		t.Errorf("unmasked %q", payload)
	}
}

func TestTrailingString(t *testing.T) {
	for m, want := range map[string]string{
		`42["tick",{"i":3,"p":"xx"},"1a"]`:             "1a",
		`42["tick",{"i":3,"p":"xx"},"MjAyNC0x-0"]`:     "MjAyNC0x-0",
		`42["tick",{"i":3},"a\"b,\"c"]`:                `a\"b,\"c`,
		`42["tick",{"i":3},"a\\"]`:                     `a\\`,
		`42["tick",""]`:                                "",
		`42["only"]`:                                   "only",
		`42["tick",{"i":3,"p":"xx"},"ends\\\\"]`:       `ends\\\\`,
		`42["tick",{"i":3,"p":"xx"},"\"quoted\" too"]`: `\"quoted\" too`,
	} {
		if got, ok := TrailingString([]byte(m)); !ok || string(got) != want {
			t.Errorf("TrailingString(%s) = %q, %v; want %q", m, got, ok, want)
		}
	}
	for _, m := range []string{`42["tick",{"i":3,"p":"xx"}]`, `42["tick",3]`, `42[]`, `"]`, `42["tick",{"p":"x"}"]`} {
		if got, ok := TrailingString([]byte(m)); ok {
			t.Errorf("TrailingString(%s) = %q, true", m, got)
		}
	}
}

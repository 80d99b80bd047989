package callback

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name  string
		s     string
		limit int
		want  string
	}{
		{"empty", "", 10, ""},
		{"shorter", "abc", 10, "abc"},
		{"exactly the limit", "abcdefghij", 10, "abcdefghij"},
		// 30 - len("… (100 bytes cut)") = 11 bytes kept at most.
		{"ASCII", strings.Repeat("a", 100), 30, strings.Repeat("a", 11) + "… (89 bytes cut)"},
		// Five 'é' (10 bytes), not half of a sixth.
		{"two-byte runes", strings.Repeat("é", 50), 30, strings.Repeat("é", 5) + "… (90 bytes cut)"},
		{"four-byte runes", strings.Repeat("𝄞", 25), 30, strings.Repeat("𝄞", 2) + "… (92 bytes cut)"},
		{"invalid UTF-8 cut where it falls", strings.Repeat("\x80", 100), 30, strings.Repeat("\x80", 11) + "… (89 bytes cut)"},
		{"no room for the marker", strings.Repeat("é", 50), 5, "éé"},
		{"zero limit", "abc", 0, ""},
		{"negative limit", "abc", -1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Clip(tt.s, tt.limit); got != tt.want {
				t.Fatalf("Clip(%d bytes, %d) = %q, want %q", len(tt.s), tt.limit, got, tt.want)
			}
		})
	}
}

// Every cut of a mix of one- to four-byte runes is within the limit,
// valid UTF-8, the beginning of the text, and counts what it cut.
func TestClipProperties(t *testing.T) {
	var b strings.Builder
	for i := range 300 {
		b.WriteString([]string{"a", "é", "€", "𝄞"}[i%4])
	}
	text := b.String()
	for n := 0; n <= len(text); n += 7 {
		s := text[:n]
		if !utf8.ValidString(s) {
			continue
		}
		for limit := 1; limit <= len(s)+1; limit += 3 {
			got := Clip(s, limit)
			if len(got) > limit || !utf8.ValidString(got) {
				t.Fatalf("Clip(%d bytes, %d) gave %d bytes, valid %v", n, limit, len(got), utf8.ValidString(got))
			}
			kept, marker, cut := strings.Cut(got, "…")
			if !cut {
				if got != s[:len(got)] || (len(s) <= limit && got != s) {
					t.Fatalf("Clip(%d bytes, %d) = %q", n, limit, got)
				}
				continue
			}
			if !strings.HasPrefix(s, kept) || marker != fmt.Sprintf(" (%d bytes cut)", len(s)-len(kept)) {
				t.Fatalf("Clip(%d bytes, %d) = %q", n, limit, got)
			}
			if len(kept) < limit-len(cutMarker(len(s)))-utf8.UTFMax+1 {
				t.Fatalf("Clip(%d bytes, %d) kept %d bytes only", n, limit, len(kept))
			}
		}
	}
}

// echo fails to decode with an error that quotes its input.
type echo struct{}

func (*echo) UnmarshalJSON(b []byte) error { return fmt.Errorf("not an echo: %s", b) }

// clock parses its string with time.Parse, whose error quotes the input.
type clock time.Time

func (c *clock) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, s)
	*c = clock(t)
	return err
}

// An ArgError's text is bounded whatever the decoder said; the error
// itself keeps all of it, and the public message none.
func TestArgErrorText(t *testing.T) {
	big := strings.Repeat("a", 100_000)
	quoted, _ := json.Marshal(big)
	tests := []struct {
		name  string
		fn    any
		args  []string
		index int
		typ   string
		cause any // a pointer to the type of error Err wraps
	}{
		{"type mismatch", func(struct{ X int }) {}, []string{string(quoted)}, 1, "struct { X int }", new(*json.UnmarshalTypeError)},
		{"time.Time field", func(struct{ When time.Time }) {}, []string{`{"When":` + string(quoted) + `}`}, 1, "struct { When time.Time }", new(*json.UnmarshalTypeError)},
		{"time.Parse in UnmarshalJSON", func(struct{ When clock }) {}, []string{`{"When":` + string(quoted) + `}`}, 1, "struct { When callback.clock }", new(*time.ParseError)},
		{"string-tagged number", func(struct {
			N int `json:",string"`
		}) {
		}, []string{`{"N":` + string(quoted) + `}`}, 1, `struct { N int "json:\",string\"" }`, nil},
		{"UnmarshalJSON quoting its input", func(int, echo) {}, []string{"1", string(quoted)}, 2, "callback.echo", nil},
		{"variadic", func(int, ...echo) {}, []string{"1", string(quoted)}, 2, "callback.echo", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := New("test", tt.fn)
			if err != nil {
				t.Fatal(err)
			}
			args := make([]json.RawMessage, len(tt.args))
			for i, a := range tt.args {
				args[i] = json.RawMessage(a)
			}
			_, err = f.Call(nil, args, nil, reflect.Value{})
			var ae *ArgError
			if !errors.As(err, &ae) {
				t.Fatalf("Call: %v, want an *ArgError", err)
			}
			if ae.Index != tt.index || ae.Type.String() != tt.typ {
				t.Errorf("ArgError for argument %d of type %s, want %d of type %s", ae.Index, ae.Type, tt.index, tt.typ)
			}
			text := ae.Error()
			prefix := fmt.Sprintf("argument %d: cannot decode into %s: ", tt.index, tt.typ)
			if !strings.HasPrefix(text, prefix) || len(text) > len(prefix)+maxCause {
				t.Errorf("Error() = %.200q… (%d bytes), want %q and at most %d bytes of cause", text, len(text), prefix, maxCause)
			}
			if want := fmt.Sprintf("invalid argument %d", tt.index); ae.PublicMessage() != want {
				t.Errorf("PublicMessage() = %q, want %q", ae.PublicMessage(), want)
			}
			if tt.cause != nil && !errors.As(err, tt.cause) {
				t.Errorf("%T does not wrap %T", err, tt.cause)
			}
			if full := ae.Err.Error(); len(full) > maxCause && !strings.Contains(full, big) {
				t.Errorf("Err lost the input it quoted: %.200q…", full)
			}
		})
	}
}

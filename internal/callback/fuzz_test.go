package callback

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/rallyhq/rally/internal/fuzzseed"

	"github.com/rallyhq/rally/internal/parser"
)

// The fuzz target of Func.Call. Its seeds come from the argument lists of
// the vectors of section F of the protocol reference (docs: SOCKETIO.md);
// each is added with f.Add and also kept as a file under
// testdata/fuzz/FuzzCall/ so that a plain "go test" runs it. After changing
// the seeds, rewrite the files with
//
//	RALLY_WRITE_FUZZ_SEEDS=1 go test -run 'Fuzz' ./internal/callback

// callSeeds are JSON argument lists (an event's arguments after its name,
// or an ack's) and attachments, separated by 0x1e.
var callSeeds = []struct{ name, args, atts string }{
	{"F25", `[1,{"a":true}]`, ""},
	{"F29", `[1,"2",{"3":[false]}]`, ""},
	{"F30", `[]`, ""},
	{"F31", `["hi"]`, ""},
	{"F33", `[{"_placeholder":true,"num":0}]`, "\x01\x02\x03"},
	{"F34", `[{"a":[{"_placeholder":true,"num":0},{"b":{"_placeholder":true,"num":1}}]}]`, "\x01\x1e\x02"},
	{"F35", `[{"_placeholder":true,"num":0},"x"]`, "\xff"},
	{"F38", `[null,null]`, ""},
	{"handler-error", `["x",-1,"AQID",13]`, ""},
	{"handler-panic", `["panic",2,{"_placeholder":true,"num":0}]`, "\x01"},
	{"panic-nil", `[{"panic":null},1,2]`, ""},
	{"runtime-panic", `[{"N":13},{"V":"boom","B":"AQID"}]`, ""},
	{"struct-binary", `[{"B":{"_placeholder":true,"num":1},"V":[{"_placeholder":true,"num":0}],"N":7}]`, "a\x1ebc"},
	{"bad-arg", `[1,"two",[3]]`, ""},
	{"not-json", "[1,\x1e{\"a\":", ""},
}

// FuzzCall calls handlers of several signatures with fuzzed JSON arguments
// and attachments: Call never panics, a handler's panic comes back as a
// *PanicError, an argument that does not decode stops the call with an
// *ArgError, and a call that returns normally gives one value per result.
func FuzzCall(f *testing.F) {
	for _, s := range callSeeds {
		fuzzseed.Add(f, s.name, []byte(s.args), []byte(s.atts))
	}

	errHandler := errors.New("handler error")
	type payload struct {
		B []byte
		V any
		N *int
	}
	// What the handlers did during one call.
	var called, panicked, failed bool
	handlers := []struct {
		fn    any
		fixed []reflect.Value
	}{
		{fn: func(s string, n int, b []byte) (string, int, error) {
			called = true
			if s == "panic" {
				panicked = true
				panic("asked to")
			}
			if n < 0 {
				failed = true
				return "", 0, errHandler
			}
			return s, n + len(b), nil
		}},
		{fn: func(ctx string, m map[string]any, rest ...any) []any {
			called = true
			if v, ok := m["panic"]; ok {
				panicked = true
				panic(v) // panic(nil) included
			}
			return append(rest, ctx)
		}, fixed: []reflect.Value{reflect.ValueOf("ctx")}},
		{fn: func(p payload, q *payload) error {
			called = true
			if q != nil && q.V == "boom" {
				panicked = true
				var none []int
				_ = none[len(q.B)] // a runtime error
			}
			if p.N != nil && *p.N == 13 {
				failed = true
				return errHandler
			}
			return nil
		}},
		{fn: func(vals ...any) (any, error) {
			called = true
			if len(vals) == 3 {
				panicked = true
				panic(errors.New("three arguments"))
			}
			if len(vals) == 0 {
				return nil, nil
			}
			return vals[0], nil
		}},
		{fn: func(a [2]int, x float32, u uint8, ok bool, raw json.RawMessage) {
			called = true
		}},
	}
	funcs := make([]*Func, len(handlers))
	for i, h := range handlers {
		var fixed []reflect.Type
		for _, v := range h.fixed {
			fixed = append(fixed, v.Type())
		}
		fn, err := New(fmt.Sprintf("handler %d", i), h.fn, fixed...)
		if err != nil {
			f.Fatal(err)
		}
		funcs[i] = fn
	}

	f.Fuzz(func(t *testing.T, argText []byte, atts []byte) {
		// A JSON array is split as the parser splits event payloads;
		// anything else is taken as raw arguments separated by 0x1e.
		args, err := parser.SplitArray(argText)
		if !json.Valid(argText) || err != nil {
			args = nil
			for _, a := range bytes.Split(argText, []byte{0x1e}) {
				args = append(args, json.RawMessage(a))
			}
		}
		var attachments [][]byte
		if len(atts) > 0 {
			attachments = bytes.Split(atts, []byte{0x1e})
		}

		for i, fn := range funcs {
			called, panicked, failed = false, false, false
			results, err := fn.Call(handlers[i].fixed, args, attachments, reflect.Value{})
			var argErr *ArgError
			switch {
			case errors.As(err, &argErr):
				if called || argErr.Index < 1 || argErr.Index > len(args) {
					t.Fatalf("handler %d: %v (handler called: %v, %d args)", i, err, called, len(args))
				}
			case panicked:
				if !IsPanic(err) || results != nil {
					t.Fatalf("handler %d panicked: Call = %v, %v", i, results, err)
				}
			case failed:
				if !errors.Is(err, errHandler) || results != nil {
					t.Fatalf("handler %d failed: Call = %v, %v", i, results, err)
				}
			default:
				if !called || err != nil || len(results) != fn.results {
					t.Fatalf("handler %d: Call = %v, %v (called %v)", i, results, err, called)
				}
			}
		}
	})
}

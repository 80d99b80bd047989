// Package callback calls Go functions with arguments decoded from Socket.IO
// JSON arguments, and turns their results into acknowledgement arguments.
package callback

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime/debug"
	"strconv"
	"unicode/utf8"

	"github.com/rallyhq/rally/internal/parser"
)

var errorType = reflect.TypeFor[error]()

// Func is a function checked once and then called many times.
type Func struct {
	fn       reflect.Value
	fixed    int            // leading parameters supplied by the caller
	params   []reflect.Type // decoded parameters, the variadic one excluded
	ack      bool           // the caller supplies the last non-variadic parameter
	variadic reflect.Type   // element type of a final ...T parameter, or nil
	results  int            // results sent as ack arguments
	hasErr   bool           // the last result is an error
}

// New checks that fn is a function whose first parameters have exactly the
// types in fixed, and whose other parameters and results can be JSON-coded.
// what names the function in errors ("handler of event \"x\"").
func New(what string, fn any, fixed ...reflect.Type) (*Func, error) {
	return NewSpec(what, fn, Spec{Fixed: fixed})
}

// Spec says which parameters of a function the caller supplies rather than
// decodes.
type Spec struct {
	// Fixed are the types of the leading parameters.
	Fixed []reflect.Type
	// Ack, when set, is the type of a parameter the function may take
	// after the decoded ones (before a variadic one): its answer, which
	// then goes through that parameter rather than its results.
	Ack reflect.Type
}

// NewSpec is New for a function whose supplied parameters spec describes.
func NewSpec(what string, fn any, spec Spec) (*Func, error) {
	fixed := spec.Fixed
	v := reflect.ValueOf(fn)
	if fn == nil || v.Kind() != reflect.Func {
		return nil, fmt.Errorf("%s: got %T, want a function", what, fn)
	}
	if v.IsNil() {
		return nil, fmt.Errorf("%s: nil function", what)
	}
	t := v.Type()
	f := &Func{fn: v, fixed: len(fixed)}
	if t.NumIn() < len(fixed) {
		return nil, fmt.Errorf("%s: %s must take %s first", what, t, typeList(fixed))
	}
	for i, ft := range fixed {
		if t.In(i) != ft {
			return nil, fmt.Errorf("%s: parameter %d of %s is %s, want %s", what, i+1, t, t.In(i), ft)
		}
	}
	n := t.NumIn()
	if t.IsVariadic() {
		if n-1 < len(fixed) {
			return nil, fmt.Errorf("%s: %s: the variadic parameter cannot replace %s", what, t, typeList(fixed))
		}
		f.variadic = t.In(n - 1).Elem()
		n--
	}
	if spec.Ack != nil && n > len(fixed) && t.In(n-1) == spec.Ack {
		f.ack = true
		n--
	}
	for i := len(fixed); i < n; i++ {
		if spec.Ack != nil && t.In(i) == spec.Ack {
			return nil, fmt.Errorf("%s: %s: %s must be the last parameter (before a variadic one)", what, t, spec.Ack)
		}
		if err := decodable(t.In(i)); err != nil {
			return nil, fmt.Errorf("%s: parameter %d of %s: %w", what, i+1, t, err)
		}
		f.params = append(f.params, t.In(i))
	}
	if f.variadic != nil {
		if err := decodable(f.variadic); err != nil {
			return nil, fmt.Errorf("%s: variadic parameter of %s: %w", what, t, err)
		}
	}
	f.results = t.NumOut()
	if f.results > 0 && t.Out(f.results-1) == errorType {
		f.hasErr = true
		f.results--
	}
	if f.ack && f.results > 0 {
		return nil, fmt.Errorf("%s: %s answers through its %s: it may return an error, nothing else", what, t, spec.Ack)
	}
	for i := range f.results {
		if t.Out(i) == errorType {
			return nil, fmt.Errorf("%s: %s: only the last result may be an error", what, t)
		}
		if err := encodable(t.Out(i)); err != nil {
			return nil, fmt.Errorf("%s: result %d of %s: %w", what, i+1, t, err)
		}
	}
	return f, nil
}

func typeList(ts []reflect.Type) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ", "
		}
		s += t.String()
	}
	return s
}

// decodable reports why JSON cannot be decoded into a value of type t.
func decodable(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("cannot decode JSON into %s", t)
	case reflect.Interface:
		if t.NumMethod() > 0 {
			return fmt.Errorf("cannot decode JSON into interface %s (use any)", t)
		}
	}
	return nil
}

// encodable reports why a value of type t cannot be encoded as JSON.
func encodable(t reflect.Type) error {
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128:
		return fmt.Errorf("cannot encode %s as JSON", t)
	}
	return nil
}

// TakesAck reports whether the function takes the Spec's Ack parameter.
func (f *Func) TakesAck() bool { return f.ack }

// WantsArgs reports whether the function takes any decoded argument.
func (f *Func) WantsArgs() bool { return len(f.params) > 0 || f.variadic != nil }

// ArgError is a failure to decode one argument.
type ArgError struct {
	Index int // 1-based position among the event's arguments
	Type  reflect.Type
	Err   error
}

// maxCause bounds how much of the decoding error's text an ArgError's own
// text quotes.
const maxCause = 256

// Error names the argument and its Go type, and quotes the decoding error
// cut to maxCause bytes: encoding/json's errors may quote the input (a
// bad value for a string-tagged field, a time.Time, a json.Number), and
// an UnmarshalJSON method may return anything. Err keeps the whole error.
func (e *ArgError) Error() string {
	return fmt.Sprintf("argument %d: cannot decode into %s: %s", e.Index, e.Type, Clip(e.Err.Error(), maxCause))
}

func (e *ArgError) Unwrap() error { return e.Err }

// PublicMessage says which argument failed, and nothing of the server's
// Go types, decoder or of the input: what the client may be told.
func (e *ArgError) PublicMessage() string { return "invalid argument " + strconv.Itoa(e.Index) }

// Clip returns s when it is at most limit bytes long, and otherwise its
// beginning followed by a marker saying how many bytes were cut,
// "… (N bytes cut)", the whole at most limit bytes. The cut falls between
// UTF-8 sequences, so that a valid s gives a valid result. When limit
// leaves no room for the marker, s is cut to limit bytes without one.
func Clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	if limit <= 0 {
		return ""
	}
	// The marker is longest when it counts every byte of s.
	keep := limit - len(cutMarker(len(s)))
	if keep < 0 {
		return s[:runeStart(s, limit)]
	}
	keep = runeStart(s, keep)
	return s[:keep] + cutMarker(len(s)-keep)
}

func cutMarker(n int) string { return "… (" + strconv.Itoa(n) + " bytes cut)" }

// runeStart returns where to cut s, at n or up to utf8.UTFMax-1 bytes
// before it, so as not to split a UTF-8 sequence; n < len(s). Bytes that
// are not valid UTF-8 are cut at n.
func runeStart(s string, n int) int {
	for i := n; i > n-utf8.UTFMax && i >= 0; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}

// PanicError is a panic recovered from a called function.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Call decodes args (JSON texts, with binary attachments) into the
// function's parameters, calls it after the fixed arguments (and with ack,
// when it takes one), and returns its non-error results. Missing arguments
// are zero values; extra ones are ignored unless the function is variadic.
// A decoding failure is an *ArgError and the function is not called; a
// panic is a *PanicError.
func (f *Func) Call(fixed []reflect.Value, args []json.RawMessage, attachments [][]byte, ack reflect.Value) (results []any, err error) {
	// Decoding runs user code too (UnmarshalJSON methods): recover from it.
	defer func() {
		if p := recover(); p != nil {
			results, err = nil, &PanicError{Value: p, Stack: debug.Stack()}
		}
	}()
	in := make([]reflect.Value, 0, f.fixed+len(f.params)+2)
	in = append(in, fixed...)
	for i, t := range f.params {
		v := reflect.New(t)
		if i < len(args) {
			if err := parser.Unmarshal(args[i], attachments, v.Interface()); err != nil {
				return nil, &ArgError{Index: i + 1, Type: t, Err: err}
			}
		}
		in = append(in, v.Elem())
	}
	if f.ack {
		in = append(in, ack)
	}
	if f.variadic != nil {
		rest := 0
		if len(args) > len(f.params) {
			rest = len(args) - len(f.params)
		}
		s := reflect.MakeSlice(reflect.SliceOf(f.variadic), rest, rest)
		for j := range rest {
			i := len(f.params) + j
			if err := parser.Unmarshal(args[i], attachments, s.Index(j).Addr().Interface()); err != nil {
				return nil, &ArgError{Index: i + 1, Type: f.variadic, Err: err}
			}
		}
		in = append(in, s)
	}

	var out []reflect.Value
	if f.variadic != nil {
		out = f.fn.CallSlice(in)
	} else {
		out = f.fn.Call(in)
	}
	if f.hasErr {
		if e := out[f.results]; !e.IsNil() {
			return nil, e.Interface().(error)
		}
	}
	results = make([]any, f.results)
	for i := range f.results {
		results[i] = out[i].Interface()
	}
	return results, nil
}

// IsPanic reports whether err is a recovered panic.
func IsPanic(err error) bool {
	var p *PanicError
	return errors.As(err, &p)
}

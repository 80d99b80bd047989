package redisadapter

import (
	"testing"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
)

// compress(false) travels as Node's adapter carries it: flags.compress
// false; a missing or true compress flag compresses.
func TestCompressFlag(t *testing.T) {
	flags := flagsOf(rally.BroadcastOptions{NoCompress: true})
	if v, ok := flags.Get("compress"); !ok || v != false {
		t.Fatalf("flags %v, want compress: false", flags)
	}
	for _, tc := range []struct {
		flags msgpack.Map
		want  bool
	}{
		{msgpack.Map{{Key: "compress", Value: false}}, true},
		{msgpack.Map{{Key: "compress", Value: true}}, false},
		{msgpack.Map{}, false},
	} {
		opts := getOptions(msgpack.Map{{Key: "flags", Value: tc.flags}})
		if opts.NoCompress != tc.want {
			t.Errorf("flags %v: NoCompress %v, want %v", tc.flags, opts.NoCompress, tc.want)
		}
	}
}

package sharded

import "testing"

// The slots Redis 7.0 answers to CLUSTER KEYSLOT for these names.
func TestSlot(t *testing.T) {
	for name, want := range map[string]int{
		"foo": 12182, "bar": 5061, "hello": 866, "{user1000}.following": 3443,
		"socket.io#/#": 13868, "a{}b": 13694, "{}x": 10595, "{a}{b}": 15495,
	} {
		if got := slot(name); got != want {
			t.Errorf("slot(%q) = %d, want %d", name, got, want)
		}
	}
}

package ws

import (
	"reflect"
	"testing"
)

// FuzzParser feeds arbitrary bytes to the parser, whole and cut in two at
// an arbitrary point: it must not panic, and where the input is cut must
// not change what it reports.
func FuzzParser(f *testing.F) {
	hello := []byte("hello")
	seeds := [][]byte{
		clientFrame(fin|opText, hello),
		clientFrame(fin|opBinary, []byte{0, 1, 2, 0xff}),
		clientFrame(fin|opText, nil),
		clientFrame(fin|opBinary, make([]byte, 300)),
		concat(clientFrame(opText, []byte("frag")), clientFrame(fin|opPing, []byte("p")), clientFrame(fin|opContinuation, []byte("ment"))),
		concat(clientFrame(fin|opText, hello), closeFrame(StatusNormalClosure, "bye")),
		clientFrame(fin|rsv1|opText, compress(f, []byte("hello hello hello hello"))),
		unmaskedFrame(fin|opText, hello),
		clientFrame(fin|0x3, nil),
		clientFrame(fin|opText, []byte{0xff}),
	}
	for i, s := range seeds {
		f.Add(s, uint16(i*3), i%2 == 0)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint16, deflate bool) {
		const maxSize = 1 << 16
		at := int(cut) % (len(data) + 1)
		wantEvents, wantErr := parseChunks(t, maxSize, deflate, [][]byte{data})
		events, err := parseChunks(t, maxSize, deflate, [][]byte{data[:at], data[at:]})
		if !reflect.DeepEqual(events, wantEvents) || err != wantErr {
			t.Fatalf("cut at %d of %d bytes: got %v, %q; whole: %v, %q", at, len(data), events, err, wantEvents, wantErr)
		}
	})
}

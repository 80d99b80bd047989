// Package fuzzseed keeps the seeds of the fuzz targets in two places at
// once: added with f.Add, for fuzzing, and as files under
// testdata/fuzz/<target>/, so that a plain "go test" (CI) runs them. After
// changing a seed list, rewrite the files with
//
//	RALLY_WRITE_FUZZ_SEEDS=1 go test -run Fuzz ./internal/...
package fuzzseed

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Add adds a seed of []byte values to f, and checks that its corpus file
// testdata/fuzz/<target>/<name> holds the same values (or writes it, with
// RALLY_WRITE_FUZZ_SEEDS set).
func Add(f *testing.F, name string, values ...[]byte) {
	f.Helper()
	args := make([]any, len(values))
	want := []byte("go test fuzz v1\n")
	for i, v := range values {
		args[i] = v
		want = fmt.Appendf(want, "[]byte(%q)\n", v)
	}
	f.Add(args...)
	dir := filepath.Join("testdata", "fuzz", f.Name())
	file := filepath.Join(dir, name)
	if os.Getenv("RALLY_WRITE_FUZZ_SEEDS") != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(file, want, 0o644); err != nil {
			f.Fatal(err)
		}
		return
	}
	if got, err := os.ReadFile(file); err != nil || !bytes.Equal(got, want) {
		f.Errorf("seed corpus file %s is missing or stale (rewrite with RALLY_WRITE_FUZZ_SEEDS=1)", file)
	}
}

package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWriteAndRemoveTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "last-good-config")
	for _, durable := range []bool{true, false} {
		if err := Write(path, []byte("x\n"), 0o600, durable); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("after Write: %v, %v", fi, err)
		}
	}
	// What a killed writer leaves, next to what is not its.
	for _, name := range []string{".last-good-config.tmp123", ".last-good-config.tmp9", ".last-good-config.tmp",
		".startup-config.tmp1", "last-good-config.tmp1"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, ".last-good-config.tmpdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := RemoveTemps(path); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{".last-good-config.tmp", ".last-good-config.tmpdir", ".startup-config.tmp1", "last-good-config", "last-good-config.tmp1"}
	if !slices.Equal(left, want) {
		t.Errorf("left %q, want %q", left, want)
	}
	if err := RemoveTemps(filepath.Join(dir, "none", "x")); err != nil {
		t.Errorf("a missing directory: %v", err)
	}
}

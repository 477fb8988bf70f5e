package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "startup-config")
	for _, text := range []string{"first\n", "second\n"} {
		if err := writeFileAtomic(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != text {
			t.Fatalf("after write: %q, %v; want %q", got, err, text)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v; want 0644", fi.Mode(), err)
	}
	// No temp files are left behind.
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want 1: %v", len(ents), ents)
	}
}

func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "startup-config")
	if err := writeFileAtomic(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory in the way of the rename: the write fails, the old file stays.
	if err := writeFileAtomic(dir, []byte("new\n"), 0o644); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
	got, _ := os.ReadFile(path)
	if string(got) != "old\n" {
		t.Errorf("old file = %q", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temp file left behind: %v", ents)
	}
}

func TestWriteFileAtomicThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real-config")
	link := filepath.Join(dir, "startup-config")
	os.WriteFile(real, []byte("old\n"), 0o644)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if err := writeFileAtomic(link, []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("symlink replaced by a file: %v", fi.Mode())
	}
	if got, _ := os.ReadFile(real); string(got) != "new\n" {
		t.Errorf("target = %q", got)
	}
}

// A save of the same config is skipped only when the last value queued is
// on disk: not when an older write finished while it waited and it then
// failed.
func TestLastGoodRetriesAfterAFailedNewerWrite(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "last-good-config"), filepath.Join(dir, "sub")
	if err := os.Mkdir(bad, 0o700); err != nil { // a directory: renaming over it fails
		t.Fatal(err)
	}
	lg := newLastGoodWriter(slog.New(slog.DiscardHandler))
	started, release := make(chan struct{}), make(chan struct{})
	var writes atomic.Int32
	write := lg.w.Write
	lg.w.Write = func(v lastGood) {
		if writes.Add(1) == 1 {
			close(started)
			<-release
		}
		write(v)
	}
	lg.queue(good, []byte("a\n"), false)
	<-started
	lg.queue(bad, []byte("b\n"), false) // waits, then fails
	close(release)
	lg.w.Flush()
	lg.queue(bad, []byte("b\n"), true)
	lg.w.Flush()
	if n := writes.Load(); n != 3 {
		t.Errorf("%d writes, want 3: the failed one was not tried again", n)
	}
	lg.queue(good, []byte("c\n"), false)
	lg.w.Flush()
	lg.queue(good, []byte("c\n"), true) // on disk: nothing to do
	lg.w.Flush()
	if n := writes.Load(); n != 4 {
		t.Errorf("%d writes, want 4: a save of what is on disk was queued", n)
	}
	if data, err := os.ReadFile(good); err != nil || string(data) != "c\n" {
		t.Errorf("last good file %q, %v", data, err)
	}
}

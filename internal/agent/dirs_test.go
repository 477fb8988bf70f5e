package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEnsureDirsCreatesAndChecks(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "run", "slxsh")
	if err := EnsureDirs(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("created %v, %v", fi.Mode(), err)
	}
	// Writable by others: refused with the fix in the message.
	os.Chmod(dir, 0o777)
	if err := EnsureDirs(dir); !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Errorf("world-writable directory: %v", err)
	}
	os.Chmod(dir, 0o775)
	if err := EnsureDirs(dir); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("group-writable directory: %v", err)
	}
	os.Chmod(dir, 0o755)
	// A sticky world-writable parent (/tmp) is fine; a plain one is not.
	os.Chmod(filepath.Dir(dir), 0o777|os.ModeSticky)
	if err := EnsureDirs(dir); err != nil {
		t.Errorf("under a sticky parent: %v", err)
	}
	os.Chmod(filepath.Dir(dir), 0o777)
	if err := EnsureDirs(dir); !errors.Is(err, ErrUnsafeDir) {
		t.Errorf("under a world-writable parent: %v", err)
	}
	os.Chmod(filepath.Dir(dir), 0o755)
}

func TestEnsureDirsRefusesAnotherUsersDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := filepath.Join(t.TempDir(), "slxsh")
	os.Mkdir(dir, 0o755)
	os.Chown(dir, 65534, 65534)
	err := EnsureDirs(dir)
	if !errors.Is(err, ErrUnsafeDir) || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("directory of another user: %v", err)
	}
}

// TestPlantedSymlinkRefused: a symlink another user planted where the
// agent keeps a file is neither written through nor read.
func TestPlantedSymlinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	dir := t.TempDir()
	precious := filepath.Join(dir, "shadow")
	os.WriteFile(precious, []byte("root's\n"), 0o600)
	state := filepath.Join(dir, "running-config")
	os.Symlink(precious, state)
	os.Lchown(state, 65534, 65534)
	if err := writeFileAtomic(state, []byte("hostname x\n"), 0o600); err == nil || !strings.Contains(err.Error(), "symlink owned by uid 65534") {
		t.Errorf("write through a planted symlink: %v", err)
	}
	if _, _, err := readFileIfExists(state); err == nil {
		t.Error("read through a planted symlink")
	}
	if got, _ := os.ReadFile(precious); string(got) != "root's\n" {
		t.Errorf("target overwritten: %q", got)
	}
	// root's own symlink (a startup-config kept elsewhere) is followed.
	os.Lchown(state, 0, 0)
	if data, ok, err := readFileIfExists(state); err != nil || !ok || string(data) != "root's\n" {
		t.Errorf("root's symlink: %q, %v, %v", data, ok, err)
	}
}

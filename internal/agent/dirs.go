package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The agent runs as root and writes files (the socket, the running-config
// state, the startup-config, the last good configuration) into
// directories whose names come from flags. Another local user who owns or
// may write one of them could plant a symlink there and have root
// overwrite any file (issue 12). So:
//
//   - the directories are created by the agent (0755, owned by it), and a
//     directory (or a parent) that is owned by another user or writable by
//     group or others (without the sticky bit) makes the agent refuse to
//     start, with the path and the fix in the message;
//   - files are opened with O_NOFOLLOW, and a symlink is followed only when
//     it is owned by root or the agent's own user (an administrator's
//     startup-config kept elsewhere); any other is refused.

// ErrUnsafeDir marks a directory the agent refuses to use.
var ErrUnsafeDir = errors.New("unsafe directory")

// EnsureDirs creates each directory (mode 0755) that does not exist and
// checks that it and its parents are safe for the agent to write in.
func EnsureDirs(dirs ...string) error {
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		if err := checkDirTree(dir); err != nil {
			return err
		}
	}
	return nil
}

// checkDirTree checks dir and every parent up to /.
func checkDirTree(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if err := checkDir(d, d == abs); err != nil {
			return err
		}
		if d == "/" {
			return nil
		}
	}
}

// checkDir refuses a directory that another user could change: owned by
// someone else than root or the agent's user, or writable by group or
// others. A parent (not the directory itself) may be world-writable with
// the sticky bit (/tmp): then others cannot rename or remove what is in
// it. A symlink is checked where it points, and the link itself must be
// trusted.
func checkDir(dir string, self bool) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check %s: %w", dir, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if err := trustedOwner(fi); err != nil {
			return fmt.Errorf("%w: %s is a symlink owned by uid %d; remove it or use a directory owned by root", ErrUnsafeDir, dir, owner(fi))
		}
		if fi, err = os.Stat(dir); err != nil {
			return fmt.Errorf("check %s: %w", dir, err)
		}
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeDir, dir)
	}
	if trustedOwner(fi) != nil {
		return fmt.Errorf("%w: %s is owned by uid %d, not root; another user could plant files there: chown root %s (or remove it and let aclagent create it)", ErrUnsafeDir, dir, owner(fi), dir)
	}
	perm := fi.Mode()
	if perm&0o022 != 0 && (self || perm&fs.ModeSticky == 0) {
		return fmt.Errorf("%w: %s is writable by group or others (mode %#o); another user could plant files there: chmod go-w %s", ErrUnsafeDir, dir, perm.Perm(), dir)
	}
	return nil
}

// trustedOwner accepts a file owned by root or the agent's user.
func trustedOwner(fi fs.FileInfo) error {
	if uid := owner(fi); uid != 0 && uid != uint32(os.Geteuid()) {
		return fmt.Errorf("owned by uid %d", uid)
	}
	return nil
}

func owner(fi fs.FileInfo) uint32 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Uid
	}
	return 0
}

// resolveTrusted follows path while it is a symlink owned by root or the
// agent's user (at most 8 links), and refuses any other symlink. The
// result is the file to open (with O_NOFOLLOW) or replace.
func resolveTrusted(path string) (string, error) {
	for range 8 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil // a missing file is created where it is named
		}
		if err := trustedOwner(fi); err != nil {
			return "", fmt.Errorf("%s is a symlink %s: not followed", path, err)
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", fmt.Errorf("%s: too many levels of symlinks", path)
}

// readFileIfExists returns the file's content, or ok == false when it does
// not exist. It opens with O_NOFOLLOW (after following trusted symlinks
// only) and O_NONBLOCK (a FIFO in its place cannot hang the agent), reads
// regular files only, and at most maxConfigFile bytes.
func readFileIfExists(path string) (data []byte, ok bool, err error) {
	real, err := resolveTrusted(path)
	if err != nil {
		return nil, false, err
	}
	fd, err := unix.Open(real, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, false, nil
	case errors.Is(err, unix.ELOOP):
		return nil, false, fmt.Errorf("%s is a symlink: not followed", real)
	case err != nil:
		return nil, false, &fs.PathError{Op: "open", Path: real, Err: err}
	}
	f := os.NewFile(uintptr(fd), real)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	switch {
	case fi.IsDir():
		return nil, false, fmt.Errorf("%s is a directory, not a file", real)
	case !fi.Mode().IsRegular():
		return nil, false, fmt.Errorf("%s is not a regular file (%s)", real, fi.Mode().Type())
	case fi.Size() > maxConfigFile:
		return nil, false, fmt.Errorf("%s is %d bytes, more than the %d a configuration may have", real, fi.Size(), maxConfigFile)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, false, fmt.Errorf("read %s: %w", real, err)
	}
	return data, true, nil
}

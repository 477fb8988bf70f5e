package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/slxsh/slxsh/internal/atomicfile"
	"github.com/slxsh/slxsh/internal/latest"
)

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new file, never a torn one: write a temp file
// in the same directory, fsync it, rename it over path, fsync the directory
// (so the rename itself is durable).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// writeFileInBoot replaces path with data as writeFileAtomic does, for a
// file that means something only until the next boot (it lives in /run):
// without the fsyncs, which protect against a crash of the system and
// cost a change of a 50k-entry config 10-40 ms. Readers and a killed
// agent still see the old or the new file (the rename is atomic).
func writeFileInBoot(path string, data []byte, perm fs.FileMode) error {
	return replaceFile(path, data, perm, false)
}

func replaceFile(path string, data []byte, perm fs.FileMode, durable bool) (err error) {
	// A symlinked file (startup-config kept elsewhere) is replaced where it
	// points, and stays a symlink, when the link is root's (dirs.go);
	// another user's symlink is refused.
	path, err = resolveTrusted(path)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return atomicfile.Write(path, data, perm, durable)
}

// readStateJSON decodes the JSON file at path (one the agent keeps beside
// its state) into v; ok is false when path is "" or there is no file.
func readStateJSON(path string, v any) (ok bool, err error) {
	if path == "" {
		return false, nil
	}
	data, ok, err := readFileIfExists(path)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return true, nil
}

// keepStateJSON writes v as JSON to path ("": nowhere), or removes the
// file when v is nil. A failure is logged, the file named by what.
func (a *Agent) keepStateJSON(path, what string, v any) {
	if path == "" {
		return
	}
	if v == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			a.log.Warn("cannot remove the "+what, "path", path, "err", err)
		}
		return
	}
	data, err := json.Marshal(v)
	if err == nil {
		err = writeFileAtomic(path, data, 0o600)
	}
	if err != nil {
		a.log.Warn("cannot save the "+what, "path", path, "err", err)
	}
}

// removeTemps removes what writes of the agent's files left when it was
// killed during them (Start, before it writes any).
func (a *Agent) removeTemps() {
	for _, path := range []string{a.opts.StatePath, a.revertPath(), a.baselinePath(), a.startupStatusPath(), a.opts.LastGoodPath, a.opts.StartupPath} {
		if path == "" {
			continue
		}
		if real, err := resolveTrusted(path); err == nil {
			path = real
		}
		if err := atomicfile.RemoveTemps(path); err != nil {
			a.log.Warn("cannot remove the temp files of an earlier agent", "path", path, "err", err)
		}
	}
}

// lastGoodWriter keeps the last good configuration (LastGoodPath) on
// disk, in the background (latest.Writer): it only matters at a boot
// whose startup-config cannot be loaded, and its fsyncs would delay
// every change. What it holds is written once: a save of the same
// config rewrites nothing, unless the write before failed.
type lastGoodWriter struct {
	w       latest.Writer[lastGood]
	queued  atomic.Uint64 // values handed to the writer
	written atomic.Uint64 // the last of them known to be on disk
	held    [sha256.Size]byte
	path    string // held's (the writer's goroutine's, with held)
	log     *slog.Logger
}

type lastGood struct {
	n    uint64 // its number among the values queued
	path string
	data []byte // the writer's own
}

func newLastGoodWriter(log *slog.Logger) *lastGoodWriter {
	lg := &lastGoodWriter{log: log}
	lg.w.Write = lg.write
	return lg
}

// queue hands the writer a copy of data, unless it is the last value
// queued (same) and that is on disk.
func (lg *lastGoodWriter) queue(path string, data []byte, same bool) {
	if same && lg.written.Load() == lg.queued.Load() {
		return
	}
	lg.w.Queue(lastGood{n: lg.queued.Add(1), path: path, data: bytes.Clone(data)})
}

func (lg *lastGoodWriter) write(v lastGood) {
	sum := sha256.Sum256(v.data)
	if v.path != lg.path || sum != lg.held {
		lg.path = ""
		if err := writeFileAtomic(v.path, v.data, 0o600); err != nil {
			lg.log.Warn("cannot save the last good configuration", "path", v.path, "err", err)
			return
		}
		lg.path, lg.held = v.path, sum
	}
	lg.written.Store(v.n)
}

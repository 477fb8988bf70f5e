package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/slxsh/slxsh/internal/agent/wire"
)

// systemd integration (dist/aclagent.service is Type=notify with a
// watchdog). Outside systemd (no NOTIFY_SOCKET, no JOURNAL_STREAM) all of
// this does nothing.

// notify sends one sd_notify state ("READY=1", "STOPPING=1", ...).
func notify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// watchdog pings systemd's watchdog (WATCHDOG=1) at half its interval
// (WatchdogSec=) while the agent answers on its socket: each ping follows
// a `show version` request the agent answers through its own socket
// server, so a wedged accept loop or server stops the pings and systemd
// restarts the agent. The request takes no lock, so a long apply (a large
// configuration) does not count as wedged.
func watchdog(ctx context.Context, sock string, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("watchdog settings not understood", "err", err)
	}
	if interval <= 0 {
		return
	}
	client := wire.NewClient(sock)
	client.Timeout = interval / 4
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	log.Info("systemd watchdog on", "interval", interval)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := client.Ping(); err != nil {
				log.Error("watchdog: the agent does not answer on its socket; not pinging", "err", err)
				continue
			}
			notify(log, daemon.SdNotifyWatchdog)
		}
	}
}

// newLogger returns the agent's structured logger on w. When w is the
// journal's stream (JOURNAL_STREAM names its device and inode, as systemd
// sets it for a service's stderr), every line starts with its syslog
// priority (<3> error, <4> warning, <6> info, <7> debug), which journald
// strips and records, so WARN and ERROR reach `journalctl -p warning`.
func newLogger(w io.Writer) *slog.Logger {
	if !isJournal(w) {
		return slog.New(slog.NewTextHandler(w, nil))
	}
	out := &prioWriter{w: w}
	return slog.New(prioHandler{inner: slog.NewTextHandler(out, nil), out: out})
}

// isJournal reports whether w is the stream JOURNAL_STREAM ("DEV:INODE")
// names.
func isJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	env := os.Getenv("JOURNAL_STREAM")
	if !ok || env == "" {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && env == fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// prioHandler writes each record through its inner handler with the
// record's priority prefix.
type prioHandler struct {
	inner slog.Handler
	out   *prioWriter
}

func (h prioHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h prioHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.prefix = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h prioHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return prioHandler{inner: h.inner.WithAttrs(attrs), out: h.out}
}

func (h prioHandler) WithGroup(name string) slog.Handler {
	return prioHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// priority is the syslog priority prefix of a level (sd-daemon.h).
func priority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	}
	return "<7>"
}

// prioWriter prefixes each write (the text handler writes one line per
// record) with the priority its handler set; mu is held by the handler.
type prioWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
}

func (p *prioWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte(p.prefix), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

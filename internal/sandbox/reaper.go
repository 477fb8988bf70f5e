package sandbox

import (
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReapArg is the hidden first argument that makes slxsh run Reap: the
// sandbox starts `slxsh --sandbox-reap DIR` as its reaper.
const ReapArg = "--sandbox-reap"

// startReaper starts a detached process that cleans up if this slxsh dies
// without Close (SIGKILL, or a signal handler that exits at once): it
// outlives us, learns of our death (Pdeathsig, and by polling its parent),
// and removes the namespaces, the temp directory and the pid file, unless a
// new sandbox has claimed them meanwhile. Close stops it first.
func (s *Sandbox) startReaper() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, ReapArg, s.Dir)
	// Its own session: the terminal's hangup does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return err
	}
	s.reaper = cmd
	go cmd.Wait()
	return nil
}

// stopReaper ends the reaper once Close has cleaned up itself.
func (s *Sandbox) stopReaper() {
	if s.reaper != nil && s.reaper.Process != nil {
		s.reaper.Process.Signal(syscall.SIGKILL)
	}
}

// Reap is the reaper's main: it waits until its parent (the sandbox's
// slxsh) is gone, then cleans up what that sandbox built. It returns the
// exit status.
func Reap(dir string) int {
	parent := os.Getppid()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT)
	// Pdeathsig only wakes us early: the parent is gone when we have been
	// reparented (a signal alone could come from the exit of the thread
	// that started us, with the parent alive).
	for os.Getppid() == parent {
		select {
		case <-term:
		case <-time.After(time.Second):
		}
	}
	if data, err := os.ReadFile(pidFile); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid != parent {
			return 0 // a new sandbox owns the names now
		}
	}
	teardown()
	if strings.Contains(dir, "slxsh-sandbox-") {
		os.RemoveAll(dir)
	}
	os.Remove(pidFile)
	return 0
}

package agent

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// pendingRevert is a revert timer as kept next to the state file, so that
// an agent restarted while the timer runs still reverts: the protection of
// a remote administrator must not depend on the agent staying up.
type pendingRevert struct {
	Deadline time.Time `json:"deadline"`
	Config   string    `json:"config"` // the config to return to, as text
}

// revertPath is where a pending revert timer is kept ("" : nowhere).
func (a *Agent) revertPath() string {
	if a.opts.StatePath == "" {
		return ""
	}
	return a.opts.StatePath + ".revert"
}

// Revert arms the revert timer (`configure terminal revert timer M`):
// unless Confirm is called within minutes, the running config returns to
// what it is now. It protects a remote administrator who locks himself out.
func (a *Agent) Revert(minutes int) error {
	if err := cli.CheckRevertMinutes(minutes); err != nil {
		return userErr(err.Error())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revert != nil {
		return userErr("% Error: a revert timer is already running; configure confirm first")
	}
	unit := a.opts.RevertUnit
	if unit == 0 {
		unit = time.Minute
	}
	p := pendingRevert{Deadline: time.Now().Add(time.Duration(minutes) * unit), Config: a.format.Format(a.running)}
	if path := a.revertPath(); path != "" {
		data, _ := json.Marshal(p)
		if err := writeFileAtomic(path, data, 0o600); err != nil {
			return errorf("%% Error: cannot keep the revert timer: %v", err)
		}
	}
	a.armRevertLocked(p.Deadline, a.running.Clone(), revertRetry)
	a.log.Info("revert timer armed", "minutes", minutes, "deadline", p.Deadline)
	return nil
}

// armRevertLocked starts the timer that reverts to saved at deadline,
// and tries again retry later if that fails.
func (a *Agent) armRevertLocked(deadline time.Time, saved *acl.Config, retry time.Duration) {
	a.revertGen++
	gen := a.revertGen
	a.revertAt = deadline
	a.revert = time.AfterFunc(time.Until(deadline), func() { a.fireRevert(gen, saved, retry) })
}

// fireRevert restores saved unless timer gen was confirmed meanwhile.
func (a *Agent) fireRevert(gen uint64, saved *acl.Config, retry time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revert == nil || a.revertGen != gen {
		return
	}
	a.revert = nil
	// The file goes only once saved is installed: an agent killed before
	// that reverts when it restarts (the deadline has passed), and one
	// that cannot install it tries again.
	if _, err := a.installLocked(saved, "revert timer"); err != nil {
		a.failures.Add(1)
		a.log.Error("revert timer: cannot restore the previous config; trying again", "in", retry, "err", err)
		a.armRevertLocked(time.Now().Add(retry), saved, min(2*retry, maxRevertRetry))
		return
	}
	a.dropRevertLocked()
	a.log.Warn("revert timer expired without confirm: previous config restored")
}

// revertRetry is how long a revert that failed waits to try again, twice
// as long after each failure up to maxRevertRetry (configure confirm
// stops it).
var revertRetry = 10 * time.Second

const maxRevertRetry = 5 * time.Minute

// Confirm cancels a pending revert timer (`configure confirm`).
func (a *Agent) Confirm() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.revert == nil {
		return userErr("% Error: no revert timer is running")
	}
	a.revert.Stop()
	a.revert = nil
	a.dropRevertLocked()
	a.log.Info("configuration confirmed")
	return nil
}

func (a *Agent) dropRevertLocked() { a.keepStateJSON(a.revertPath(), "revert timer file", nil) }

// resumeRevert re-arms a revert timer that a previous agent left running
// (called by Start after the config is installed). A deadline that passed
// while no agent ran reverts at once.
func (a *Agent) resumeRevert() error {
	path := a.revertPath()
	var p pendingRevert
	if ok, err := readStateJSON(path, &p); err != nil || !ok {
		return err
	}
	saved, err := cli.ParseConfig(p.Config)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armRevertLocked(p.Deadline, saved, revertRetry)
	a.log.Warn("resuming the revert timer of the previous agent", "deadline", p.Deadline)
	return nil
}

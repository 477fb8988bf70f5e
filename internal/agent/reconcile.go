package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// DriftInterval is how often the agent checks that the kernel still holds
// its table as it installed it. Half a second keeps a repair well within the
// 2 s the product promises, at the cost of one netlink dump of our table.
const DriftInterval = 500 * time.Millisecond

// Start loads the configuration and installs it. A restarted agent adopts
// the running config it saved in StatePath (same boot); otherwise it loads
// the startup-config; with neither it starts empty. Installing reconciles
// the kernel table in place: kept sets and counters keep their state, so a
// restart leaves no moment without limits. An unreadable or invalid config
// is an error and leaves the kernel untouched.
func (a *Agent) Start() ([]string, error) {
	cfg, src, err := a.initialConfig()
	if err != nil {
		return nil, err
	}
	a.startBaselines(src == "adopt")
	warns, err := a.Replace(cfg, src)
	if err != nil {
		return nil, fmt.Errorf("install %s: %w", src, err)
	}
	a.mu.Lock()
	a.dropResetBaselinesLocked()
	a.mu.Unlock()
	if err := a.resumeRevert(); err != nil {
		a.log.Error("cannot resume the revert timer", "err", err)
	}
	return warns, nil
}

// startBaselines takes over the counter baselines of the previous agent
// when its running config is adopted (same table, same counters), and
// forgets any left over otherwise.
func (a *Agent) startBaselines(adopt bool) {
	if !adopt {
		a.mu.Lock()
		a.saveBaselinesLocked() // none yet: removes a stale file
		a.mu.Unlock()
		return
	}
	if err := a.loadBaselines(); err != nil {
		a.log.Warn("ignoring the saved counter baselines", "err", err)
	}
}

func (a *Agent) initialConfig() (*acl.Config, string, error) {
	if a.opts.StatePath != "" {
		cfg, ok, err := loadFile(a.opts.StatePath)
		switch {
		case err != nil:
			a.log.Warn("ignoring saved running-config", "path", a.opts.StatePath, "err", err)
		case ok:
			a.log.Info("adopting the running-config of the previous agent", "path", a.opts.StatePath)
			return cfg, "adopt", nil
		}
	}
	if a.opts.StartupPath == "" {
		return acl.New(), "empty", nil
	}
	cfg, ok, err := loadFile(a.opts.StartupPath)
	if err != nil {
		return nil, "", fmt.Errorf("load startup-config: %w", err)
	}
	if !ok {
		a.log.Info("no startup-config, starting empty", "path", a.opts.StartupPath)
		return acl.New(), "empty", nil
	}
	return cfg, "startup-config", nil
}

// Reload replaces the running config with the startup-config (SIGHUP). The
// applier changes only what differs, so unchanged entries keep their counts.
// A missing or invalid file keeps the running config as it is.
func (a *Agent) Reload() ([]string, error) {
	if a.opts.StartupPath == "" {
		return nil, fmt.Errorf("no startup-config file")
	}
	cfg, ok, err := loadFile(a.opts.StartupPath)
	if err == nil && !ok {
		err = fmt.Errorf("%s does not exist", a.opts.StartupPath)
	}
	if err != nil {
		a.mu.Lock()
		a.failures++
		a.mu.Unlock()
		return nil, fmt.Errorf("reload startup-config, running config kept: %w", err)
	}
	warns, err := a.Replace(cfg, "reload")
	if err != nil {
		a.mu.Lock()
		a.failures++
		a.mu.Unlock()
		return nil, fmt.Errorf("reload startup-config, running config kept: %w", err)
	}
	return warns, nil
}

// RepairDrift checks that the kernel holds the installed ruleset and
// re-installs it when someone else changed or deleted our table. It reports
// whether a repair was made.
func (a *Agent) RepairDrift() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ruleset == nil {
		return false, nil
	}
	ok, err := a.opts.Kernel.InSync(a.ruleset)
	if err == nil && ok {
		return false, nil
	}
	if err != nil {
		a.log.Warn("cannot compare the kernel table, re-installing", "err", err)
	} else {
		a.log.Warn("table changed outside the agent, restoring it", "drift", a.driftLocked())
	}
	// Every limit starts afresh: while the table was not as installed,
	// connections may have been admitted that its sets did not count.
	var renew []string
	for _, s := range nft.LimitSets(a.ruleset) {
		renew = append(renew, s.Name)
	}
	if err := a.applyLocked(a.running, a.ruleset, "drift repair", renew); err != nil {
		a.failures++
		a.log.Error("drift repair failed; will retry", "err", err)
		return false, err
	}
	a.repairs++
	a.armLoadLocked()
	a.dropResetBaselinesLocked()
	a.log.Info("table restored")
	return true, nil
}

// RecompileInterval is how often the agent compiles the running config
// again and installs the result if it differs from what the kernel runs:
// the ruleset also depends on the host (the UTC offset of time ranges
// across DST changes, user names), not only on the config.
const RecompileInterval = 15 * time.Second

// Recompile compiles the running config again and installs the ruleset
// when it differs from the installed one. It reports whether it did.
func (a *Agent) Recompile() (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ruleset == nil {
		return false, nil
	}
	rs, err := a.opts.Compile(a.running)
	if err != nil {
		a.log.Warn("running config no longer compiles; the kernel keeps the last ruleset", "err", err)
		return false, err
	}
	if rs.String() == a.ruleset.String() {
		return false, nil
	}
	if err := a.applyLocked(a.running, rs, "recompile", nft.Renewals(a.ruleset, rs)); err != nil {
		a.failures++
		return false, err
	}
	a.ruleset = rs
	a.armLoadLocked()
	a.log.Info("host changes recompiled into the ruleset")
	return true, nil
}

// LoadInterval is how often load-limit flags follow the load average
// (which the kernel itself only updates every 5 s) and newly blocked
// sources are flushed.
const LoadInterval = time.Second

// Run repairs drift every DriftInterval, follows the load average every
// LoadInterval and recompiles every RecompileInterval, until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	drift := time.NewTicker(DriftInterval)
	defer drift.Stop()
	load := time.NewTicker(LoadInterval)
	defer load.Stop()
	recompile := time.NewTicker(RecompileInterval)
	defer recompile.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-drift.C:
			a.RepairDrift()
		case <-load.C:
			a.ArmLoad()
			a.FlushBlocked()
		case <-recompile.C:
			a.Recompile()
		}
	}
}

// driftLocked describes the drift for the log.
func (a *Agent) driftLocked() string {
	text, err := a.opts.Kernel.Drift(a.ruleset)
	if err != nil {
		return err.Error()
	}
	return text
}

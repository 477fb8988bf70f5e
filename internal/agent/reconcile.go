package agent

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// DriftInterval is how often the agent checks that the kernel still holds
// its table as it installed it. Half a second keeps a repair well within the
// 2 s the product promises, at the cost of one netlink dump of our table.
const DriftInterval = 500 * time.Millisecond

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

// RepairDrift checks that the kernel holds the installed ruleset and
// re-installs it when someone else changed or deleted our table. It reports
// whether a repair was made.
func (a *Agent) RepairDrift() (bool, error) {
	a.verifyCounts()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ruleset == nil {
		return false, nil
	}
	ok, err := a.opts.Kernel.InSync(a.ruleset)
	if err == nil && ok {
		return a.renewDriftedLocked()
	}
	if err != nil {
		a.log.Warn("cannot compare the kernel table, re-installing", "err", err)
	} else {
		a.log.Warn("table changed outside the agent, restoring it", "drift", a.driftLocked())
	}
	// Every limit starts afresh: while the table was not as installed,
	// connections may have been admitted that its sets did not count.
	a.opts.Kernel.Tampered() // so they are all counted again
	var renew []string
	for _, s := range nft.LimitSets(a.ruleset) {
		renew = append(renew, s.Name)
	}
	if err := a.applyLocked(a.running, a.ruleset, "drift repair", renew); err != nil {
		a.failures.Add(1)
		a.log.Error("drift repair failed; will retry", "err", err)
		return false, err
	}
	a.repairs.Add(1)
	a.armLoadLocked()
	a.restoreLockoutsLocked()
	a.dropResetBaselinesLocked()
	a.log.Info("table restored")
	return true, nil
}

// verifyCounts has the session side check the limit sets' counts against
// conntrack after someone else committed (a flushed set keeps the rules
// intact); it runs outside the agent's lock (one conntrack dump).
func (a *Agent) verifyCounts() {
	if a.opts.Sessions == nil {
		return
	}
	n := a.opts.Kernel.ForeignCommits()
	again := a.verifyAgain.Swap(false)
	if a.foreignSeen.Swap(n) == n && !again {
		return
	}
	if err := a.opts.Sessions.Verify(); err != nil {
		if !errors.Is(err, conntrack.ErrInstalling) {
			a.log.Warn("cannot check the limit sets against conntrack", "err", err)
		}
		a.verifyAgain.Store(true) // try again next time
	}
}

// renewDriftedLocked renews the limit sets whose sessions the kernel does
// not count as it should (SessionTracker.Renewals: sessions picked up
// mid-stream, gates or reservations or counts changed by someone else; and
// those whose elements someone else added or deleted, tamperedLocked), so
// that they are counted again.
func (a *Agent) renewDriftedLocked() (bool, error) {
	if a.opts.Sessions == nil {
		return false, nil
	}
	renew := a.opts.Sessions.Renewals()
	for _, s := range a.tamperedLocked() {
		if !slices.Contains(renew, s) {
			renew = append(renew, s)
		}
	}
	if len(renew) == 0 {
		return false, nil
	}
	a.log.Info("limits counted again", "limits", renew)
	if err := a.applyLocked(a.running, a.ruleset, "limits drifted", renew); err != nil {
		a.failures.Add(1)
		return false, err
	}
	return true, nil
}

// tamperedLocked returns the limit sets (LimitSets) of the installed
// ruleset whose elements, or whose layers' elements, someone else added or
// deleted (`nft flush set`, `nft delete element`): their counts no longer
// hold the sessions they counted, even when each key is back in the set.
func (a *Agent) tamperedLocked() []string {
	sets, lost := a.opts.Kernel.Tampered()
	if lost {
		// Why not renew every limit: most events are the agent's own (a
		// recount flushes its sets), so a renewal would lose events again.
		a.log.Warn("set element events lost: the limit sets are checked against conntrack instead")
		a.verifyAgain.Store(true)
	}
	if len(sets) == 0 || a.ruleset == nil {
		return nil
	}
	limit := map[string]string{} // a connlimit set or a layer -> its limit set
	for _, s := range a.ruleset.Sets {
		if s.Kind == nft.SetConnlimit {
			limit[s.Name] = cmp.Or(s.Limit, s.Name)
		}
	}
	var out []string
	for _, name := range sets {
		if l, ok := limit[name]; ok && !slices.Contains(out, l) {
			a.log.Warn("limit drifted, counting it again", "set", l, "why", "elements changed by someone else")
			out = append(out, l)
		}
	}
	return out
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
	if a.ruleset == nil || !a.hostDependent() {
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
	if err := a.applyLocked(a.running, rs, "recompile", nft.Renewals(a.ruleset, rs, a.running, a.running)); err != nil {
		a.failures.Add(1)
		return false, err
	}
	a.ruleset = rs
	a.liveRules.Store(rs)
	a.armLoadLocked()
	a.log.Info("host changes recompiled into the ruleset")
	return true, nil
}

// hostDependent reports whether compiling the running config depends on
// the host besides the agent's flags: a user name (the user database), a
// time range (the UTC offset), or management 0 when it follows the
// default route. Otherwise compiling it again gives what the kernel runs,
// and Recompile has nothing to do: at 50k entries that was a second of
// compiling and rendering every 15 s, under the lock changes take.
func (a *Agent) hostDependent() bool {
	if a.opts.MgmtFollowsRoute {
		for _, itf := range a.running.Interfaces {
			if itf.Kind == acl.IfManagement {
				return true
			}
		}
	}
	return a.hostDep
}

// entriesHostDependent reports whether an entry of cfg names a user or a
// time range; the agent asks once per installed config (installLocked),
// not at every tick.
func entriesHostDependent(cfg *acl.Config) bool {
	for _, l := range cfg.ACLs {
		for _, e := range l.Entries {
			if e.TimeRange != "" || (e.Owner != nil && e.Owner.User != "") {
				return true
			}
		}
	}
	return false
}

// LoadInterval is how often load-limit flags follow the load average
// (which the kernel itself only updates every 5 s) and newly blocked
// sources are flushed.
const LoadInterval = time.Second

// zone is the local time zone of time ranges.
func (a *Agent) zone() *time.Location {
	if a.opts.Zone != nil {
		return a.opts.Zone
	}
	return time.Local
}

// MaxOffsetWait is the longest the agent waits for the next UTC-offset
// change of its zone before looking again (the zone's rules come from the
// zone file read at start; the clock may be set meanwhile).
const MaxOffsetWait = 24 * time.Hour

// untilOffsetChange is how long until the zone's next UTC-offset change
// (DST), when time ranges compiled for the current offset become wrong.
func (a *Agent) untilOffsetChange(now time.Time) time.Duration {
	next, ok := acl.NextOffsetChange(now, a.zone())
	if !ok {
		return MaxOffsetWait
	}
	return min(next.Sub(now), MaxOffsetWait)
}

// Run repairs drift every DriftInterval, follows the load average every
// LoadInterval, recompiles every RecompileInterval and at every UTC-offset
// change of the zone (time ranges are compiled for the offset: the kernel's
// clock is UTC), and renews the limits a time range switch concerns across
// each switch (timerange.go), until ctx ends.
func (a *Agent) Run(ctx context.Context) {
	offset := time.NewTimer(a.untilOffsetChange(time.Now()))
	defer offset.Stop()
	switches := time.NewTimer(a.untilSwitch(time.Now()))
	defer switches.Stop()
	// Drift repair runs on its own: the load and flush work of the other
	// loop never delays it (it only ever waits for the agent's lock, which
	// conntrack reads do not hold).
	done := make(chan struct{})
	go func() {
		defer close(done)
		drift := time.NewTicker(DriftInterval)
		defer drift.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-drift.C:
				a.RepairDrift()
			}
		}
	}()
	defer func() { <-done }()
	load := time.NewTicker(LoadInterval)
	defer load.Stop()
	recompile := time.NewTicker(RecompileInterval)
	defer recompile.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-load.C:
			a.ArmLoad()
			a.WatchBlocked()
			a.RetryMessages()
		case <-recompile.C:
			a.Recompile()
		case <-offset.C:
			if done, err := a.Recompile(); done || err != nil {
				a.log.Info("UTC offset changed: time ranges recompiled", "zone", a.zone().String(), "err", err)
			}
			offset.Reset(a.untilOffsetChange(time.Now()))
		case <-switches.C:
			if err := a.crossNextSwitch(); err != nil {
				switches.Reset(time.Second)
			} else {
				switches.Reset(a.untilSwitch(time.Now()))
			}
		case <-a.switched:
			switches.Reset(a.untilSwitch(time.Now()))
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

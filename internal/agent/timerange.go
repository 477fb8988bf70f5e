package agent

import (
	"slices"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// Time-range switches. The kernel switches an entry with `time-range
// NAME` on and off by its own clock: nothing in the ruleset changes. But
// the limits a switch concerns (nft.RangeRenewals) then see other
// connections than they counted: when seq 5 (`connlimit 3 time-range R`)
// stops applying, seq 10 (`connlimit 4`) decides the source's 3 sessions
// that seq 5 admitted, which its set never counted. So the agent renews
// those limits across the instant: their gates close in one transaction
// a little before it (boundaryLead, plus twice the last apply's time),
// and after it the session side counts every open session as the kernel
// decides now (conntrack attributes with the ranges' states at that
// moment) and opens them. The entries concerned refuse new connections
// from just before the switch until that count is written (one dump and
// one write, as for any new limit).
//
// What is bounded, not exact: a switch the agent reaches late (a change
// or a slow apply held it across the instant) is crossed as soon as it
// can, with a warning; until then the limits it concerns count as before
// the switch. An instant where the zone's UTC offset also changes (DST)
// is Recompile's, which installs the new rules and renews in one
// transaction; between the instant and that commit the kernel still runs
// the rules of the old offset.
//
// A restarted agent may have slept through a switch: it renews the limits
// of every range at start (installLocked, "adopt"). No session is ever
// ended because a range switched: `connlimit existing-sessions reset`
// ends nothing at a switch, and at a change judges with ranges unseen
// (conntrack.Tracker.countLocked).

// boundaryLead is how long before a switch, at least, the gates close.
const boundaryLead = 200 * time.Millisecond

// missedSwitchWindow is how far back, before a change, a switch is still
// one to cross late (a change or an apply held the agent across it).
const missedSwitchWindow = time.Minute

// switchSlack is how long after a switch the count waits: the kernel's
// clock is the agent's (CLOCK_REALTIME), so only for scheduling.
const switchSlack = 5 * time.Millisecond

// maxBoundaryLead bounds the lead however slow the last apply was.
const maxBoundaryLead = 1500 * time.Millisecond

// limitRanges returns the time ranges of cfg whose switch concerns some
// limit (nft.RangeRenewals), sorted: those named by a limited entry or by
// an entry before one that a connection could match together with it.
func limitRanges(cfg *acl.Config) []string {
	var out []string
	for _, l := range cfg.ACLs {
		var ranged []*acl.Entry
		for _, e := range l.Entries {
			if e.TimeRange != "" && !slices.Contains(out, e.TimeRange) {
				ranged = append(ranged, e)
			}
			if len(e.Connlimits) == 0 {
				continue
			}
			for _, x := range ranged {
				if !slices.Contains(out, x.TimeRange) && nft.RangeConcerns(x, e) {
					out = append(out, x.TimeRange)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// nextSwitch returns the first instant after the last switch crossed
// (switchFrom; it may be past: a switch is crossed late rather than
// never) at which one of the ranges that concern a limit switches, with
// the ranges that switch then.
func (a *Agent) nextSwitch() (at time.Time, names []string, ok bool) {
	a.mu.Lock()
	cfg, ranges, from := a.running, a.limitRanges, a.switchFrom
	a.mu.Unlock()
	for _, name := range ranges {
		tr := cfg.TimeRange(name)
		if tr == nil {
			continue
		}
		next, ok := rangeSwitch(tr, from, a.zone())
		switch {
		case !ok:
		case at.IsZero() || next.Before(at):
			at, names = next, []string{name}
		case next.Equal(at):
			names = append(names, name)
		}
	}
	return at, names, !at.IsZero()
}

// rangeSwitch is the first change of tr after from that the kernel makes
// by its clock. A change at an instant where the zone's UTC offset changes
// is left out: the kernel's rules are for the old offset until Recompile
// installs those of the new one, whose Renewals renew what the new rules
// concern in the same transaction.
func rangeSwitch(tr *acl.TimeRange, from time.Time, loc *time.Location) (time.Time, bool) {
	for range 4 {
		next, ok := tr.NextChange(from, loc)
		if !ok {
			return time.Time{}, false
		}
		if off, ok := acl.NextOffsetChange(from, loc); !ok || !off.Equal(next) {
			return next, true
		}
		from = next
	}
	return time.Time{}, false
}

// boundaryLeadNow is how long before a switch the gates close: enough for
// an apply as slow as the last one.
func (a *Agent) boundaryLeadNow() time.Duration {
	return min(boundaryLead+2*time.Duration(a.applyTook.Load()), maxBoundaryLead)
}

// switchRecheck is the longest Run waits before it looks for the next
// switch again (the clock may be set meanwhile; timers do not follow).
const switchRecheck = time.Minute

// untilSwitch is how long until the gates of the next switch are to
// close (0: now, also for a switch already past), at most switchRecheck.
func (a *Agent) untilSwitch(now time.Time) time.Duration {
	at, _, ok := a.nextSwitch()
	if !ok {
		return switchRecheck
	}
	return min(max(at.Sub(now)-a.boundaryLeadNow(), 0), switchRecheck)
}

// crossNextSwitch crosses the next switch when its gates are due to close
// (the timer of Run may fire for a switch that a change has moved). It
// returns an error when the crossing failed (Run tries again a second
// later).
func (a *Agent) crossNextSwitch() error {
	at, names, ok := a.nextSwitch()
	if !ok || time.Until(at) > a.boundaryLeadNow()+100*time.Millisecond {
		return nil
	}
	done, err := a.CrossBoundary(at, names)
	if done || err != nil {
		a.log.Info("time ranges switched: limits counted again", "ranges", names, "at", at.In(a.zone()).Format(time.TimeOnly), "err", err)
	}
	return err
}

// CrossBoundary renews the limits that the switch of the ranges names at
// the instant at concerns, across it: their gates close now, and the
// sessions are counted once at has passed. A switch already past (the
// agent was busy: a change held it across the instant) is crossed at
// once, for every range, with a warning: until then the limits it
// concerns counted as before it. It reports whether any limit was
// renewed; a switch without limits to renew, or crossed, is done with.
func (a *Agent) CrossBoundary(at time.Time, names []string) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	switched := func(n string) bool { return slices.Contains(names, n) }
	if late := now.Sub(at); late > 0 {
		a.log.Warn("a time range switched before the agent could close the gates of its limits; counting them again now",
			"ranges", names, "late", late.Round(time.Millisecond))
		switched = allRanges
	}
	if a.ruleset == nil || a.opts.Sessions == nil {
		a.switchFrom = maxTime(at, now)
		return false, nil // without a session side nothing counts
	}
	renew := nft.RangeRenewals(a.ruleset, a.running, switched)
	if len(renew) == 0 {
		a.switchFrom = maxTime(at, now)
		return false, nil
	}
	if err := a.applyAcrossLocked(a.running, a.ruleset, "time range switch", renew, at); err != nil { // resets nothing (notNew)
		a.failures.Add(1)
		return false, err
	}
	a.switchFrom = maxTime(at, now)
	return true, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// allRanges is RangeRenewals' switched for every range.
func allRanges(string) bool { return true }

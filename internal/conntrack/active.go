package conntrack

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Time ranges. The kernel applies an entry with `time-range NAME` only
// while the range is active (meta day, hour and time: the same clock as
// the agent's), so the session side attributes flows as the kernel
// decides now: an entry whose range is inactive is left out of its list,
// and one whose range is active is an entry like any other. Every count
// (Plan, the index, Verify) and every view then agrees on one answer to
// "which entry decides this session now" (a reset does not ask it: it
// never ends a session for a range, Tracker.countLocked). When a range
// switches, the entries it decides change in the kernel at once; the
// agent renews the limits that the switch concerns across the instant
// (agent.CrossBoundary), and the next read of the index attributes its
// records again (the bindings' lists are other values then).

// activeLists gives each ACL as it is at an instant: without the entries
// whose time range is inactive. A list keeps its value while the ranges
// it names keep their states, so that the index sees the same bindings
// (sameBindings compares lists by pointer) and attributes nothing again.
type activeLists struct {
	mu sync.Mutex
	m  map[*acl.ACL]activeList
}

// activeList is one ACL's entry in activeLists.
type activeList struct {
	ranges []string // the time ranges its entries name, sorted
	states string   // their states ('1' active) that out is of
	out    *acl.ACL
}

// spareActiveLists bounds activeLists beyond the lists of the config it
// was given: past it (lists of configs never installed, as a view may
// read) it starts afresh. keep drops the lists of earlier configs.
const spareActiveLists = 32

// at returns l as the kernel applies it at now in loc under cfg's time
// ranges (l itself when none of its entries names one).
func (c *activeLists) at(cfg *acl.Config, l *acl.ACL, now time.Time, loc *time.Location) *acl.ACL {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) > len(cfg.ACLs)+spareActiveLists {
		c.m = map[*acl.ACL]activeList{}
	}
	al, ok := c.m[l]
	if !ok {
		al.ranges = rangesOf(l)
		al.out = l
	}
	if len(al.ranges) == 0 {
		c.m[l] = al
		return l
	}
	var b strings.Builder
	active := map[string]bool{}
	for _, name := range al.ranges {
		tr := cfg.TimeRange(name)
		on := tr != nil && tr.Active(now, loc)
		active[name] = on
		if on {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	if states := b.String(); !ok || states != al.states {
		al.states = states
		al.out = &acl.ACL{Name: l.Name, Family: l.Family, Entries: slices.DeleteFunc(slices.Clone(l.Entries),
			func(e *acl.Entry) bool { return e.TimeRange != "" && !active[e.TimeRange] })}
	}
	c.m[l] = al
	return al.out
}

// keep forgets every list that cfg does not hold (cfg is installed: the
// lists of earlier configs are garbage, and would be kept alive here).
func (c *activeLists) keep(cfg *acl.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live := make(map[*acl.ACL]bool, len(cfg.ACLs))
	for _, l := range cfg.ACLs {
		live[l] = true
	}
	for l := range c.m {
		if !live[l] {
			delete(c.m, l)
		}
	}
}

// rangesOf lists the time ranges that l's entries name, sorted.
func rangesOf(l *acl.ACL) []string {
	var out []string
	for _, e := range l.Entries {
		if e.TimeRange != "" && !slices.Contains(out, e.TimeRange) {
			out = append(out, e.TimeRange)
		}
	}
	slices.Sort(out)
	return out
}

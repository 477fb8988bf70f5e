package agent

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
	"golang.org/x/sys/unix"
)

// RunningText returns the running-config as text.
func (a *Agent) RunningText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.format.Format(a.running)
}

// Hostname returns the configured hostname ("" when none is set).
func (a *Agent) Hostname() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running.Hostname
}

// NftablesText returns the installed ruleset as nft text (`show nftables`).
func (a *Agent) NftablesText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ruleset == nil {
		return ""
	}
	return a.ruleset.String()
}

// LoggingText is `show logging`: the recent events of log entries.
func (a *Agent) LoggingText() string {
	var b strings.Builder
	if w := a.unservedWarning(); w != "" {
		b.WriteString(w + "\n")
	}
	if a.opts.Events == nil {
		b.WriteString("Access-list log: not read (no NFLOG listener)\n")
	} else {
		b.WriteString(a.opts.Events.Text())
	}
	return b.String()
}

// VersionText is the agent's part of `show version` (the shell prints its
// own version first): agent version, pid, start time, kernel.
func (a *Agent) VersionText() string {
	var u unix.Utsname
	kernel := "unknown"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) +
			" " + unix.ByteSliceToString(u.Machine[:])
	}
	v := a.opts.Version
	if v == "" {
		v = "devel"
	}
	return fmt.Sprintf("Agent: aclagent %s, pid %d, up since %s\nKernel: %s\n",
		v, os.Getpid(), a.started.Format(time.RFC3339), kernel)
}

// InterfaceNames maps management 0 and the configured interfaces to the
// Linux interfaces they mean (show interface, show access-list interface).
func (a *Agent) InterfaceNames() []cli.InterfaceName {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []cli.InterfaceName{}
	add := func(kind acl.IfKind, name string) {
		for _, n := range out {
			if n.Kind == kind && n.Name == name {
				return
			}
		}
		if a.opts.Resolve == nil {
			return
		}
		if linux := a.opts.Resolve(kind, name); linux != "" {
			out = append(out, cli.InterfaceName{Kind: kind, Name: name, Linux: linux})
		}
	}
	add(acl.IfManagement, "0")
	for _, i := range a.running.Interfaces {
		add(i.Kind, i.Name)
	}
	return out
}

// Sessions implements `show access-list sessions`. The conntrack work runs
// outside the agent's lock (on the running config of the moment), so that
// shows never hold up a change or a drift repair.
func (a *Agent) Sessions(f acl.Family, name string, seq int) ([]cli.SessionKey, error) {
	cfg, err := a.runningWith(f, name, seq)
	if err != nil {
		return nil, err
	}
	if a.opts.Sessions == nil {
		return nil, errNoSessions
	}
	keys, err := a.opts.Sessions.Sessions(cfg, f, name, seq)
	if err != nil {
		return nil, err
	}
	windows, err := a.windowKeys(f, name, seq)
	return append(sessionKeys(keys), windows...), err
}

// windowKeys are the keys of the entries' fixed windows (rate without
// burst, quota) with the time until each window ends; a key not listed
// has a fresh window. The kernel keeps what a window has used in the
// element's limit or quota, which google/nftables v0.3.0 does not read.
func (a *Agent) windowKeys(f acl.Family, name string, seq int) ([]cli.SessionKey, error) {
	rs := a.liveRules.Load()
	if rs == nil {
		return nil, nil
	}
	var out []cli.SessionKey
	for _, s := range rs.Sets {
		window := s.Kind == nft.SetQuota || (s.Kind == nft.SetRate && s.Window)
		if !window || s.Entry.Family != f || s.Entry.ACL != name || (seq != 0 && s.Entry.Seq != seq) {
			continue
		}
		what := "rate window"
		if s.Kind == nft.SetQuota {
			what = "quota window"
		}
		elems, err := a.opts.Kernel.BlockedLeft(s.Name, f)
		if err != nil {
			return nil, errorf("%% Error: cannot list %s %s: %v", what, s.Name, err)
		}
		used := map[string]nft.QuotaUse{}
		if s.Kind == nft.SetQuota {
			us, err := a.opts.Kernel.QuotaUsed(s)
			if err != nil {
				return nil, errorf("%% Error: cannot read quota window %s: %v", s.Name, err)
			}
			for _, u := range us {
				used[u.Key] = u
			}
		}
		for _, e := range elems {
			key := nft.TotalKey
			if e.Addr.IsValid() {
				key = e.Addr.String()
			}
			u := used[key]
			out = append(out, cli.SessionKey{Seq: s.Entry.Seq, Per: what, Key: key, Resets: e.Left, QuotaUsed: u.Used, Quota: u.Quota})
		}
	}
	return out, nil
}

// runningWith returns the running config of the moment (a value: changes
// replace it; read without the agent's lock) after checking that it has
// the ACL, and its entry seq unless seq is 0.
func (a *Agent) runningWith(f acl.Family, name string, seq int) (*acl.Config, error) {
	cfg := a.current()
	if err := shellErr(cfg.CheckEntry(f, name, seq)); err != nil {
		return nil, err
	}
	return cfg, nil
}

// sessionKeys are the session side's counts in the shell's form.
func sessionKeys(keys []conntrack.KeyCount) []cli.SessionKey {
	out := make([]cli.SessionKey, 0, len(keys)) // 25k keys at 100k flows: no regrowth
	for _, k := range keys {
		out = append(out, cli.SessionKey{Seq: k.Seq, Per: acl.FormatLimitKey(k.Kind, k.PrefixLen), Key: k.Key, Sessions: k.Sessions, Old: k.Old, Limit: k.Limit, AtLimit: k.AtLimit})
	}
	return out
}

// ClearSessions implements `clear access-list sessions`.
func (a *Agent) ClearSessions(f acl.Family, name string, seq int, src netip.Addr) error {
	cfg, err := a.runningWith(f, name, seq)
	if err != nil {
		return err
	}
	if a.opts.Sessions == nil {
		return errNoSessions
	}
	var srcs []netip.Addr
	if src.IsValid() {
		if src = src.Unmap(); src.Is4() != (f == acl.IPv4) {
			return errorf("%% Error: source %s is not an %s address, and access-list %q is an %s list", src, map[bool]string{true: "IPv4", false: "IPv6"}[f == acl.IPv4], name, f)
		}
		srcs = []netip.Addr{src}
	}
	return a.opts.Sessions.ClearSessions(cfg, f, name, seq, srcs...)
}

var errNoSessions = userErr("% Error: session tracking is not available in this agent")

func (a *Agent) checkACLLocked(f acl.Family, name string) error {
	return shellErr(a.running.CheckEntry(f, name, 0))
}

// TimeRangesText implements `show time-range [NAME]`: each time range (or
// the one named) active or not now, and when that next changes, in the
// agent's time zone.
func (a *Agent) TimeRangesText(name string) (string, error) {
	a.mu.Lock()
	cfg := a.running
	a.mu.Unlock()
	var trs []*acl.TimeRange
	if name != "" {
		tr := cfg.TimeRange(name)
		if tr == nil {
			return "", errorf("%% Error: time-range %q does not exist", name)
		}
		trs = []*acl.TimeRange{tr}
	} else {
		trs = cfg.TimeRanges
	}
	return FormatTimeRanges(trs, time.Now(), a.zone()), nil
}

// FormatTimeRanges is the text of `show time-range` at now in zone loc.
func FormatTimeRanges(trs []*acl.TimeRange, now time.Time, loc *time.Location) string {
	var b strings.Builder
	const layout = "15:04 02 Jan 2006 MST"
	for _, tr := range trs {
		state := "inactive"
		if tr.Active(now, loc) {
			state = "active"
		}
		fmt.Fprintf(&b, "time-range %s: %s", tr.Name, state)
		if next, ok := tr.NextChange(now, loc); ok {
			other := "active"
			if state == "active" {
				other = "inactive"
			}
			fmt.Fprintf(&b, ", %s from %s", other, next.In(loc).Format(layout))
		} else {
			b.WriteString(", never changes again")
		}
		b.WriteString("\n")
	}
	return b.String()
}

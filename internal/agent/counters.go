package agent

import (
	"fmt"

	"github.com/slxsh/slxsh/internal/acl"
)

// EntryCount is one entry's counters in one direction.
type EntryCount struct {
	Family    acl.Family
	ACL       string
	Seq       int
	Direction acl.Direction
	Matches   uint64 // connections that matched the entry
	Refused   uint64 // connections the entry refused
}

// directions returns in which directions an ACL is applied anywhere.
func directions(c *acl.Config, f acl.Family, name string) [2]bool {
	var dirs [2]bool
	for _, ifc := range c.Interfaces {
		for d := range 2 {
			if ifc.Groups[f][d] == name {
				dirs[d] = true
			}
		}
	}
	return dirs
}

// countsLocked returns the counters of every entry of every applied ACL
// (ACLs that are applied nowhere have no rules and no counters). With
// cleared, values are relative to the last `clear access-list counters`;
// without, they are the kernel's (monotonic, for Prometheus).
func (a *Agent) countsLocked(cleared bool) ([]EntryCount, error) {
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	val := func(name string) uint64 {
		v := raw[name]
		if b, ok := a.baseline[name]; cleared && ok && b <= v {
			return v - b
		}
		return v
	}
	var out []EntryCount
	for _, l := range a.running.ACLs {
		dirs := directions(a.running, l.Family, l.Name)
		for d := range 2 {
			if !dirs[d] {
				continue
			}
			for _, e := range l.Entries {
				if e.Action == acl.Remark {
					continue
				}
				m, r := counterNames(l.Family, l.Name, e.Seq, acl.Direction(d))
				out = append(out, EntryCount{
					Family: l.Family, ACL: l.Name, Seq: e.Seq, Direction: acl.Direction(d),
					Matches: val(m), Refused: val(r),
				})
			}
		}
	}
	return out, nil
}

// Counts returns every applied entry's counters as the kernel has them.
func (a *Agent) Counts() ([]EntryCount, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.countsLocked(false)
}

// ClearCounters implements `clear access-list counters [ip NAME]`. It sets
// baselines instead of resetting the kernel's counters: show subtracts
// them, while Prometheus keeps seeing monotonic counters. Baselines live in
// the agent's memory; a restarted agent shows the kernel's totals again.
func (a *Agent) ClearCounters(family, name string) error {
	f, err := parseFamily(family)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if name != "" && a.running.ACL(f, name) == nil {
		return &TxnError{Msg: fmt.Sprintf("%% Error: access-list %q does not exist", name)}
	}
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		return &TxnError{Msg: "% Error: cannot read counters: " + err.Error()}
	}
	for _, l := range a.running.ACLs {
		if name != "" && (l.Family != f || l.Name != name) {
			continue
		}
		for _, e := range l.Entries {
			for d := range 2 {
				m, r := counterNames(l.Family, l.Name, e.Seq, acl.Direction(d))
				a.baseline[m], a.baseline[r] = raw[m], raw[r]
			}
		}
	}
	return nil
}

func parseFamily(s string) (acl.Family, error) {
	switch s {
	case "", "ip":
		return acl.IPv4, nil
	case "ipv6":
		return acl.IPv6, nil
	}
	return 0, &TxnError{Msg: fmt.Sprintf("%% Error: unknown address family %q", s)}
}

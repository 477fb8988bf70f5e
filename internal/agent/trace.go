package agent

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// PacketTrace implements packet-tracer (issue 14): acl.TracePacket on the
// running config (or a copy with `access-list NAME` bound as asked) with
// the live state: key counts from the session side exactly as `show
// access-list sessions` computes them (traceKeys), sources in the ACL's
// blocked set, the load average the load-limit flags are armed from
// (ArmLoad), and for detail the compiled rules selected by comment.
func (a *Agent) PacketTrace(args cli.TraceArgs) (cli.PacketTrace, error) {
	a.mu.Lock()
	running, rs := a.running, a.ruleset
	a.mu.Unlock()
	cfg, l, asIf, err := cli.TraceConfig(running, args)
	if err != nil {
		return cli.PacketTrace{}, err
	}
	st := acl.TraceState{Now: time.Now(), Loc: time.Local, Load: a.loadNow}
	counts := "kernel (as show access-list sessions)"
	if l != nil {
		keys, err := a.traceKeys(cfg, l, args.Dir)
		if err != nil {
			return cli.PacketTrace{}, err
		}
		if keys == nil {
			counts = "none (session tracking is not available in this agent)"
		}
		st.Key = keys
		st.Gated = a.gated(l, args.Dir)
		st.Blocked = a.blockedOn(cfg, l, args.Dir)
		if !asIf {
			st.LoadFlag = a.loadFlag(rs, l, args.Dir)
			st.Quota = a.quotaUsed(rs, l, args.Dir)
		}
	}
	t := cli.RunTrace(cfg, l, asIf, args, st, counts)
	if a.opts.Resolve != nil {
		t.Linux = a.opts.Resolve(args.Kind, args.Name)
	}
	if args.Detail && l != nil {
		if asIf {
			rs, err = a.opts.Compile(cfg)
		}
		t.Rules = tracedRules(rs, err, l, args, t.Linux, &t.Trace)
	}
	return t, nil
}

// traceKeys returns the session side's counts of one ACL and direction
// under cfg as the tracer reads them; nil without a session side. This is
// the one place the tracer uses attribution (through Sessions, as `show
// access-list sessions`): when an entry gets several limits (issue 9), the
// key gains the limit it belongs to.
func (a *Agent) traceKeys(cfg *acl.Config, l *acl.ACL, dir acl.Direction) (func(int, acl.Connlimit, string) acl.KeyState, error) {
	if a.opts.Sessions == nil {
		return nil, nil
	}
	kcs, err := a.opts.Sessions.Sessions(cfg, l.Family, l.Name, 0)
	if err != nil {
		return nil, err
	}
	return conntrack.TraceKeys(kcs, l.Family, dir), nil
}

// gated returns whether one of an entry's limit sets is still gated (the
// session side is counting it: the entry refuses); nil without a session
// side.
func (a *Agent) gated(l *acl.ACL, dir acl.Direction) func(int) bool {
	if a.opts.Sessions == nil {
		return nil
	}
	ids := a.opts.Sessions.Gated()
	return func(seq int) bool {
		for _, id := range ids {
			if id == (conntrack.EntryID{ACL: l.Name, Family: l.Family, Dir: dir, Seq: seq}) {
				return true
			}
		}
		return false
	}
}

// blockedOn returns whether a source is locked out on the ACL in dir by
// one of its entries' block-for sets, or by a full blocked set's lockout
// of everyone, and by which entry (the kernel's sets read at each call).
func (a *Agent) blockedOn(cfg *acl.Config, l *acl.ACL, dir acl.Direction) func(netip.Addr) (int, bool) {
	return func(src netip.Addr) (int, bool) {
		for _, set := range blockedSets(cfg, l, false) {
			if set.ref.Dir != dir {
				continue
			}
			for _, name := range []string{set.name, set.full} {
				elems, err := a.opts.Kernel.BlockedLeft(name, l.Family)
				if err != nil {
					continue // no set: nobody is blocked by it
				}
				for _, e := range elems {
					if !e.Addr.IsValid() || e.Addr.Unmap() == src.Unmap() {
						return set.ref.Seq, true
					}
				}
			}
		}
		return 0, false
	}
}

// quotaUsed returns what the kernel's quota window of an entry of the ACL
// in dir has used for a key (the kernel's window read at each call).
func (a *Agent) quotaUsed(rs *nft.Ruleset, l *acl.ACL, dir acl.Direction) func(int, string) (uint64, bool) {
	return func(seq int, key string) (uint64, bool) {
		if rs == nil {
			return 0, false
		}
		for _, s := range rs.Sets {
			if s.Kind != nft.SetQuota || s.Entry != (nft.EntryRef{Family: l.Family, ACL: l.Name, Dir: dir, Seq: seq}) {
				continue
			}
			us, err := a.opts.Kernel.QuotaUsed(s)
			if err != nil {
				return 0, false
			}
			for _, u := range us {
				if u.Key == key {
					return u.Used, true
				}
			}
		}
		return 0, false
	}
}

func (a *Agent) loadNow() (float64, bool) {
	l, err := a.opts.Load()
	return l, err == nil
}

// loadFlag reads the kernel's load-limit flag of an entry of the applied
// ACL (the set ArmLoad arms); ok false when it has none or it cannot be read.
func (a *Agent) loadFlag(rs *nft.Ruleset, l *acl.ACL, dir acl.Direction) func(int) (bool, bool) {
	return func(seq int) (bool, bool) {
		if rs == nil {
			return false, false
		}
		for _, s := range rs.Sets {
			if s.Kind == nft.SetLoad && s.Entry == (nft.EntryRef{Family: l.Family, ACL: l.Name, Dir: dir, Seq: seq}) {
				on, err := a.opts.Kernel.Flag(s.Name, l.Family)
				return on, err == nil
			}
		}
		return false, false
	}
}

// tracedRules renders the rules a traced connection traverses.
func tracedRules(rs *nft.Ruleset, err error, l *acl.ACL, args cli.TraceArgs, linux string, t *acl.Trace) []string {
	switch {
	case err != nil:
		return []string{fmt.Sprintf("(not compiled: %v)", err)}
	case rs == nil:
		return []string{"(nothing applied yet)"}
	}
	var seqs []int
	for _, s := range t.Steps {
		seqs = append(seqs, s.Seq)
	}
	stop := nft.StopAll
	switch t.Reason {
	case "connlimit":
		stop = nft.StopConnlimit
	case "deny", "hard-drop", "load-limit":
		stop = nft.StopFirst
	}
	var out []string
	for _, r := range rs.TracedRules(l.Family, l.Name, args.Dir, linux, args.Routed, seqs, t.Seq, stop) {
		out = append(out, r.String())
	}
	return out
}

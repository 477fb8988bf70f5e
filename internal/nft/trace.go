package nft

import (
	"slices"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// TraceStop is where a traced connection leaves the deciding entry's rules.
type TraceStop int

// Where the deciding entry ends a traced connection.
const (
	StopAll       TraceStop = iota // every rule of the entry (admitted, or passed on)
	StopFirst                      // its first rule (plain deny, load-limit, connlimit 0)
	StopConnlimit                  // its connlimit rule (over the limit)
)

// TracedRules returns the rules (with their comments) that the first
// packet of a connection traverses, selected by comment (ParseComment):
// the rules of the base chain before and including the one that sends
// interface ifname's traffic to the ACL chain of (f, name, dir) (prerouting
// for in, output for out, forward for routed out; ifname "" : the first
// such rule), then the ACL
// chain's rules of the blocked check and of the entries seqs in order, the
// last of which (decided; 0 : the implicit deny) ends at stop.
func (r *Ruleset) TracedRules(f acl.Family, name string, dir acl.Direction, ifname string, routed bool, seqs []int, decided int, stop TraceStop) []*Rule {
	aclChain := ChainName(f, name, dir)
	hook := "prerouting"
	switch {
	case dir == acl.Out && routed:
		hook = "forward"
	case dir == acl.Out:
		hook = "output"
	}
	var out []*Rule
	for _, c := range r.Chains {
		if c.Name != hook {
			continue
		}
		for _, rule := range c.Rules {
			out = append(out, rule)
			if jumpsTo(rule, aclChain, ifname) {
				break
			}
		}
	}
	fl := newFlattener(r)
	for _, c := range r.Chains {
		if c.Name != aclChain {
			continue
		}
		for _, rule := range fl.rules(c) {
			ref, role, ok := rule.entryRef()
			if !ok {
				continue
			}
			switch {
			case (role == RoleBlocked || role == RoleBlockedFull) && (ref.Seq == 0 || ref.Seq == decided || slices.Contains(seqs, ref.Seq)):
				out = append(out, rule) // the lockout checks of the entries traced (of the one whose lockout refuses)
			case ref.Seq == 0 && role == "":
				if decided == 0 {
					out = append(out, rule) // implicit deny
				}
			case slices.Contains(seqs, ref.Seq) && (ref.Seq != decided || !stopped(out, decided, stop)):
				out = append(out, rule)
			}
		}
	}
	return out
}

// stopped reports whether the rules so far already end the deciding entry.
func stopped(rules []*Rule, decided int, stop TraceStop) bool {
	for _, rule := range rules {
		ref, role, ok := rule.entryRef()
		if !ok || ref.Seq != decided || role == RoleMap {
			continue
		}
		if stop == StopFirst || (stop == StopConnlimit && role == RoleConnlimit) {
			return true
		}
	}
	return false
}

// jumpsTo reports whether the rule jumps to chain for the interface
// (ifname "" : any).
func jumpsTo(r *Rule, chain, ifname string) bool {
	jump, iface := false, ifname == ""
	for _, s := range r.Stmts {
		switch s := s.(type) {
		case *Verdict:
			jump = jump || ((s.Kind == expr.VerdictJump || s.Kind == expr.VerdictGoto) && s.Chain == chain)
		case *Iface:
			iface = iface || s.Name == ifname
		}
	}
	return jump && iface
}

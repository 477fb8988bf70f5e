package nft

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// Renewals returns the limit sets of next that must start afresh although
// next keeps their names: those whose entry may now see sessions that its
// set did not count (or no longer see some it counted). That is when the
// interfaces bound to its chain changed, its own rules before its limit
// rule changed (its match), a rule that applies to every connection of the
// list changed (block-for lockouts), or an earlier entry changed that a
// connection could match together with it (acl.Entry.Overlaps: an earlier
// entry that no connection of this one can match decides none of them).
// prev is the ruleset the kernel holds, compiled from prevCfg; nil renews
// nothing (an adopted table keeps its counts).
func Renewals(prev, next *Ruleset, prevCfg, nextCfg *acl.Config) []string {
	if prev == nil {
		return nil
	}
	before, after := limitContexts(prev, prevCfg), limitContexts(next, nextCfg)
	var out []string
	for _, s := range LimitSets(next) {
		if was, ok := before[s.Name]; ok && was != after[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out
}

// chainEntry is the rules of one entry in an ACL chain, in order.
type chainEntry struct {
	seq   int
	rules []*Rule
}

// limitContexts returns, per limit set, a digest of what decides which
// connections reach its limit rule (see Renewals).
func limitContexts(rs *Ruleset, cfg *acl.Config) map[string][32]byte {
	binds := map[string][]string{}
	for _, ch := range rs.Chains {
		if ch.Hook == nil {
			continue
		}
		for _, r := range ch.Rules {
			for _, st := range r.Stmts {
				if v, ok := st.(*Verdict); ok && v.Chain != "" {
					binds[v.Chain] = append(binds[v.Chain], ch.Hook.Hook+" "+r.String())
				}
			}
		}
	}
	out := map[string][32]byte{}
	for _, ch := range rs.Chains {
		if ch.Hook != nil {
			continue
		}
		b := slices.Clone(binds[ch.Name])
		slices.Sort(b)
		head := strings.Join(b, "\n") + "\n--\n"
		var entries []chainEntry // in chain order; seq 0: rules of the whole list
		var ref EntryRef
		for _, r := range ch.Rules {
			seq := 0
			if er, role, ok := ParseComment(r.Comment); ok {
				ref = er
				if role != RoleBlocked && role != RoleBlockedFull {
					seq = er.Seq
				}
			}
			if n := len(entries); n == 0 || entries[n-1].seq != seq {
				entries = append(entries, chainEntry{seq: seq})
			}
			entries[len(entries)-1].rules = append(entries[len(entries)-1].rules, r)
		}
		var list *acl.ACL
		if cfg != nil && ref.ACL != "" {
			list = cfg.ACL(ref.Family, ref.ACL)
		}
		for i, ce := range entries {
			for j, r := range ce.rules {
				for _, st := range r.Stmts {
					c, ok := st.(*ConnlimitAdd)
					if !ok || ce.seq == 0 {
						continue
					}
					h := sha256.New()
					h.Write([]byte(head))
					self := entryOf(list, ce.seq)
					for _, prior := range entries[:i] {
						if prior.seq == 0 || self == nil || entryOf(list, prior.seq) == nil || entryOf(list, prior.seq).Overlaps(self) {
							for _, pr := range prior.rules {
								h.Write([]byte(pr.String() + "\n"))
							}
						}
					}
					for _, pr := range ce.rules[:j] {
						h.Write([]byte(pr.String() + "\n"))
					}
					var sum [32]byte
					copy(sum[:], h.Sum(nil))
					out[c.Set] = sum
				}
			}
		}
	}
	return out
}

// entryOf finds entry seq of a list (nil when unknown: then every earlier
// entry counts as overlapping).
func entryOf(l *acl.ACL, seq int) *acl.Entry {
	if l == nil {
		return nil
	}
	for _, e := range l.Entries {
		if e.Seq == seq {
			return e
		}
	}
	return nil
}

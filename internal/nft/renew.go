package nft

import (
	"crypto/sha256"
	"slices"
	"strings"
)

// Renewals returns the limit sets of next that must start afresh although
// next keeps their names: those whose entry may now see sessions that its
// set did not count (or no longer see some it counted). That is when the
// rules before the set's limit rule in its chain changed (an earlier entry
// added, removed or changed, the entry's own match changed), or the
// interfaces bound to its chain changed. prev is the ruleset the kernel
// holds; nil renews nothing (an adopted table keeps its counts).
func Renewals(prev, next *Ruleset) []string {
	if prev == nil {
		return nil
	}
	before, after := limitContexts(prev), limitContexts(next)
	var out []string
	for _, s := range LimitSets(next) {
		if was, ok := before[s.Name]; ok && was != after[s.Name] {
			out = append(out, s.Name)
		}
	}
	return out
}

// limitContexts returns, per limit set, a digest of what decides which
// connections reach its limit rule: the rules of its chain before that
// rule, and the rules of the base chains that jump to the chain.
func limitContexts(rs *Ruleset) map[string][32]byte {
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
		h := sha256.New()
		b := slices.Clone(binds[ch.Name])
		slices.Sort(b)
		h.Write([]byte(strings.Join(b, "\n") + "\n--\n"))
		for _, r := range ch.Rules {
			for _, st := range r.Stmts {
				if c, ok := st.(*ConnlimitAdd); ok {
					var sum [32]byte
					copy(sum[:], h.Sum(nil))
					out[c.Set] = sum
				}
			}
			h.Write([]byte(r.String() + "\n"))
		}
	}
	return out
}

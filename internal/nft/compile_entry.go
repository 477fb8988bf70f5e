package nft

import (
	"strconv"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// ruleCtx is what the statements so far have established about a packet,
// as nft tracks it to decide which dependency matches to emit.
type ruleCtx struct {
	nf bool // the network family is known (an ip/ip6 header match came first)
	l4 bool // the transport protocol is known
}

// entryRules compiles one entry (see doc.go for the rule shapes).
func (b *builder) entryRules(k chainKey, e *acl.Entry) []*Rule {
	ref := EntryRef{k.fam, k.name, k.dir, e.Seq}
	path := k.fam.String() + " access-list extended " + k.name + " seq " + strconv.Itoa(e.Seq)
	if !b.supported(path, e) {
		return nil
	}
	match, ctx, ok := b.match(path, k.fam, e)
	if !ok {
		return nil
	}
	mName, rName := CounterNames(k.fam, k.name, k.dir, e.Seq)
	b.rs.Counters = append(b.rs.Counters, mName, rName)
	matched, refused := &CounterRef{Name: mName}, &CounterRef{Name: rName}
	refuse := refusal(e)
	cl := e.Connlimit
	permit := e.Action == acl.Permit

	rule := func(role string, stmts ...[]Stmt) *Rule {
		r := &Rule{Comment: RuleComment(ref, role)}
		for _, s := range stmts {
			r.Stmts = append(r.Stmts, s...)
		}
		return r
	}
	switch {
	case permit && cl == nil:
		return []*Rule{rule("", match, []Stmt{matched, &Verdict{Kind: expr.VerdictReturn}})}
	case permit && cl.N == 0, !permit && (cl == nil || cl.N <= 1):
		// Refuses every match: plain deny, `connlimit 0`, and a deny whose
		// first connection already reaches its limit (deny connlimit 1).
		return []*Rule{rule("", match, []Stmt{matched, refused}, refuse)}
	}
	over := cl.N
	if !permit {
		over = cl.N - 1 // the Nth connection, this one included, is refused
	}
	key := limitKey(k.fam, cl)
	set := ConnlimitSetName(k.fam, k.name, k.dir, e.Seq, cl, over)
	b.rs.Sets = append(b.rs.Sets, &Set{Name: set, Key: key.SetKey(), Size: b.opt.SetSize,
		Entry: ref, KeyKind: cl.Key, PrefixLen: cl.PrefixLen, Over: over})
	dep := !ctx.nf && key.Kind != acl.Total
	isNew := []Stmt{&CtState{States: CtNew}}
	rules := []*Rule{
		rule("", match, isNew, []Stmt{matched, &ConnlimitAdd{Set: set, Key: key, Over: over, Dep: dep}, refused}, refuse),
		// Why: when the set is full the kernel's dynset add fails and the
		// rule above does not match (KERNEL-NOTES: a full set fails open).
		// A key that is not in the set was not counted: refuse it.
		rule(RoleFull, match, isNew, []Stmt{&SetLookup{Set: set, Key: key, Invert: true, Dep: dep}, refused}, refuse),
	}
	if permit {
		rules = append(rules, rule(RolePermit, match, isNew, []Stmt{&Verdict{Kind: expr.VerdictReturn}}))
	}
	return rules
}

// limitKey is the set key of a connlimit; a per-prefix length of 0 or of
// the whole address is the same as total or per-source.
func limitKey(f acl.Family, cl *acl.Connlimit) Key {
	k := Key{Family: f, Kind: cl.Key, PrefixLen: cl.PrefixLen}
	if k.Kind == acl.PerPrefix {
		switch {
		case k.PrefixLen <= 0:
			k.Kind, k.PrefixLen = acl.Total, 0
		case k.PrefixLen >= bitsOf(f):
			k.Kind, k.PrefixLen = acl.PerSource, 0
		}
	}
	return k
}

// supported reports the options that the compiler does not implement yet.
func (b *builder) supported(path string, e *acl.Entry) bool {
	var missing []string
	if e.Rate != nil {
		missing = append(missing, "rate")
	}
	if e.Quota != nil {
		missing = append(missing, "quota")
	}
	if e.BlockFor != nil {
		missing = append(missing, "block-for")
	}
	if e.TimeRange != "" {
		missing = append(missing, "time-range")
	}
	if e.LoadLimit != nil {
		missing = append(missing, "load-limit")
	}
	if e.Owner != nil {
		missing = append(missing, "user/uid")
	}
	if e.Refuse.Kind == acl.RefuseMessage {
		missing = append(missing, "refuse message")
	}
	if e.Log {
		missing = append(missing, "log")
	}
	for _, m := range missing {
		b.errorf(path, "%s is not supported yet", m)
	}
	return len(missing) == 0
}

// match builds the statements that select an entry's packets: addresses,
// then the protocol (as ports when the entry has ports).
func (b *builder) match(path string, f acl.Family, e *acl.Entry) ([]Stmt, ruleCtx, bool) {
	var out []Stmt
	var ctx ruleCtx
	for _, side := range []struct {
		dst bool
		a   acl.Addr
	}{{false, e.Src}, {true, e.Dst}} {
		if isAny(side.a) {
			continue
		}
		out = append(out, &Addr{Family: f, Dst: side.dst, Match: side.a, Dep: !ctx.nf})
		ctx.nf = true
	}
	if e.Proto == acl.ProtoAny {
		return out, ctx, true
	}
	if e.Proto < 0 || e.Proto > 255 {
		b.errorf(path, "invalid protocol %d", e.Proto)
		return nil, ctx, false
	}
	ctx.l4 = true
	if e.SrcPort.Op == acl.PortNone && e.DstPort.Op == acl.PortNone {
		return append(out, &L4Proto{Proto: uint8(e.Proto)}), ctx, true
	}
	switch e.Proto {
	case acl.ProtoTCP, acl.ProtoUDP, acl.ProtoSCTP:
	default:
		b.errorf(path, "ports need protocol tcp, udp or sctp")
		return nil, ctx, false
	}
	for _, p := range []acl.PortMatch{e.SrcPort, e.DstPort} {
		if (p.Op == acl.PortLt && p.Lo == 0) || (p.Op == acl.PortGt && p.Lo == 65535) ||
			(p.Op == acl.PortRange && p.Lo > p.Hi) {
			b.errorf(path, "port match matches no port")
			return nil, ctx, false
		}
	}
	return append(out, &Ports{Proto: uint8(e.Proto), Src: e.SrcPort, Dst: e.DstPort, Dep: true}), ctx, true
}

// isAny reports whether an address match matches every address.
func isAny(a acl.Addr) bool {
	switch a.Kind {
	case acl.AddrPrefix:
		return a.Prefix.Bits() == 0
	case acl.AddrWildcard:
		return !notAddr(a.Wildcard).IsValid() || notAddr(a.Wildcard).IsUnspecified()
	}
	return true
}

// refusal is how an entry refuses: hard-drop and `refuse drop` drop; TCP
// entries reset; entries of another protocol answer ICMP administratively
// prohibited; `ip`/`ipv6` entries jump to the refuse chain, which tells TCP
// from the rest.
func refusal(e *acl.Entry) []Stmt {
	switch {
	case e.Action == acl.HardDrop || e.Refuse.Kind == acl.RefuseDrop:
		return []Stmt{&Verdict{Kind: expr.VerdictDrop}}
	case e.Proto == acl.ProtoTCP:
		return []Stmt{&Reject{TCPReset: true}}
	case e.Proto == acl.ProtoAny:
		return []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}}
	}
	return []Stmt{&Reject{}}
}

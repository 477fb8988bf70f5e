package nft

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// ruleCtx is what the match statements have established about a packet,
// as nft tracks it to decide which dependency matches to emit. (The
// transport protocol needs no tracking: a tcp, udp or sctp entry always
// matches it, and nothing later depends on it but `reject with tcp reset`,
// which is only used for tcp entries.)
type ruleCtx struct {
	nf bool // the network family is known (an ip/ip6 header match came first)
}

// check is one test of an entry's limits: statements that match when the
// connection must be refused, and for tests that add to a set, statements
// that match when the key could not be added (a full set). A check with
// jump instead sends the connection on to chains of its own (which refuse
// or return) and refuses nothing itself.
type check struct {
	role   string // role word of its rule (RoleRate, RoleConnlimit, RoleDepth, ...)
	reason string // log reason: RoleRate or RoleConnlimit
	over   []Stmt
	full   []Stmt
	jump   []Stmt
	blocks bool // a refusal by `over` goes over a limit: block-for applies
}

// refuser builds the end of a refusing rule: the refused counter, the log
// statement for reason, and the verdict (through the block chain when the
// refusal goes over a limit and the entry has block-for).
type refuser func(reason string, overLimit bool) []Stmt

// entryRules compiles one entry (see doc.go for the rule shapes): every
// check refuses what goes over its limit; what passes them all is permitted
// (permit) or goes on to the next entry (deny with limits). It returns the
// entry's rules and the chains of its own that they use.
func (b *builder) entryRules(k chainKey, e *acl.Entry) ([]*Rule, []*Chain) {
	ref := EntryRef{k.fam, k.name, k.dir, e.Seq}
	path := entryPath(k, e)
	if !b.supported(path, e) {
		return nil, nil
	}
	match, ctx, ok := b.match(path, k.fam, e)
	if !ok {
		return nil, nil
	}
	conds, ok := b.timeConds(path, e)
	if !ok {
		return nil, nil
	}
	// One copy of the entry's rules per time block (compile_time.go); the
	// copies declare the same sets, counters and chains: keep the first's.
	var rules []*Rule
	var chains []*Chain
	nSets, nCounters := 0, 0
	for i, cond := range conds {
		r, ch := b.entryRulesWith(k, e, ref, slices.Concat(match, cond), ctx)
		for _, rule := range r {
			if i > 0 { // comments stay unique: `acl=tr dir=in seq=20 t2`
				rule.Comment += " " + timeCopyWord(i)
			}
		}
		rules = append(rules, r...)
		if i == 0 {
			chains, nSets, nCounters = ch, len(b.rs.Sets), len(b.rs.Counters)
			continue
		}
		b.rs.Sets, b.rs.Counters = b.rs.Sets[:nSets], b.rs.Counters[:nCounters]
	}
	return rules, chains
}

// entryRulesWith compiles an entry whose match statements are match.
func (b *builder) entryRulesWith(k chainKey, e *acl.Entry, ref EntryRef, match []Stmt, ctx ruleCtx) ([]*Rule, []*Chain) {
	mName, rName := CounterNames(k.fam, k.name, k.dir, e.Seq)
	b.rs.Counters = append(b.rs.Counters, mName, rName)
	matched, refused := &CounterRef{Name: mName}, &CounterRef{Name: rName}
	refuse := b.refusal(e)
	permit := e.Action == acl.Permit
	logAs := func(reason string, verdict []Stmt) []Stmt { return b.logged(e, ref, reason, verdict) }
	rule := func(role string, stmts ...[]Stmt) *Rule {
		return &Rule{Comment: RuleComment(ref, role), Stmts: slices.Concat(stmts...)}
	}
	var chains []*Chain
	overRefuse := refuse
	if e.BlockFor != nil {
		block := blockChain(k, ref, e, refuse)
		chains = append(chains, block)
		overRefuse = []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: block.Name}}
	}
	// Refusals by a limit also count in the limit's own counter.
	reasons := map[string]*CounterRef{}
	for _, r := range EntryReasons(e) {
		reasons[r] = &CounterRef{Name: ReasonCounterName(ref, r)}
		b.rs.Counters = append(b.rs.Counters, reasons[r].Name)
	}
	refuseAs := func(reason string, overLimit bool) []Stmt {
		verdict := refuse
		if overLimit {
			verdict = overRefuse
		}
		counters := []Stmt{refused}
		if c := reasons[strings.TrimSuffix(reason, "-full")]; c != nil {
			counters = append(counters, c)
		}
		return slices.Concat(counters, logAs(reason, verdict))
	}

	checks, own, refuseAll := b.checks(k, ref, e, ctx, refuseAs)
	switch {
	case refuseAll || (!permit && len(checks) == 0):
		return []*Rule{rule("", match, []Stmt{matched, refused}, logAs("deny", refuse))}, nil
	case len(checks) == 0:
		// Nothing refuses: no refused counter (the agent reads a missing
		// one as 0), one object less per plain permit entry.
		if n := len(b.rs.Counters); n > 0 && b.rs.Counters[n-1] == rName {
			b.rs.Counters = b.rs.Counters[:n-1]
		}
		return []*Rule{rule("", match, []Stmt{matched}, logAs("permit", []Stmt{&Verdict{Kind: expr.VerdictReturn}}))}, nil
	}
	// A packet picked up mid-stream (AdoptMark, GhostMark: no SYN opened
	// it) is no new connection: no limit counts, spends or refuses it.
	isNew := []Stmt{&CtState{States: CtNew}, &CtMarkEq{Mask: AdoptMark | GhostMark}}
	var rules []*Rule
	for i, c := range checks {
		role, head := c.role, []Stmt{}
		if i == 0 {
			role, head = "", []Stmt{matched}
		}
		if c.jump != nil {
			rules = append(rules, rule(role, match, isNew, head, c.jump))
			continue
		}
		rules = append(rules, rule(role, match, isNew, head, c.over, refuseAs(c.reason, c.blocks)))
		if c.full != nil {
			// Why: when the set is full the kernel's dynset add fails and the
			// rule above does not match (KERNEL-NOTES: a full set fails open).
			// A key that is not in the set was not counted: refuse it.
			rules = append(rules, rule(c.role+"-full", match, isNew, c.full, refuseAs(c.reason+"-full", false)))
		}
	}
	if permit {
		// Without `ct state new`: a packet that conntrack calls invalid (out
		// of window, say) of a session the entry admitted passes as under
		// an unlimited permit, instead of falling through to the implicit
		// deny and resetting the session.
		var mark []Stmt
		if q := e.Quota; q != nil {
			// The base chains count the packets of connections with this
			// mark into the quota (compile_quota.go).
			mark = []Stmt{&CtMarkID{Mask: QuotaMarkMask, ID: b.quotaIDs[QuotaSetName(ref, e)]}}
		}
		rules = append(rules, rule(RolePermit, match, mark, logAs("permit", []Stmt{&Verdict{Kind: expr.VerdictReturn}})))
	}
	return rules, append(own, chains...)
}

// checks returns the limits of an entry in the order they are tested
// (load-limit, connlimit, quota, rate), the chains they use, and whether
// the entry refuses every match instead (`connlimit 0`, `deny ...
// connlimit 1`: the first connection already reaches the limit).
//
// Why this order: a check that admits spends what it counts, whatever a
// later check decides. A rate token spent is gone for its whole window
// (a day, for `per day`), and a quota keeps the bytes of the first
// packet; a connlimit counts a connection only while conntrack holds it,
// and a refused connection is never confirmed: the kernel drops it from
// the count at its next count on the same CPU, or two jiffies later on
// another. So connlimit comes before what spends for longer, and rate,
// which spends the most, last: connections that connlimit or quota refuse
// never use up a source's rate.
func (b *builder) checks(k chainKey, ref EntryRef, e *acl.Entry, ctx ruleCtx, refuseAs refuser) ([]check, []*Chain, bool) {
	var out []check
	if l := e.LoadLimit; l != nil {
		out = append(out, b.loadCheck(k, ref, l))
	}
	// Several connlimits, one per key (acl sorts them): each its own set
	// and reservations; the roles of the rules of all but the first name
	// the key ("connlimit-p24", "gate-p24", ...) so that comments stay
	// unique and the first's stay as for a single limit.
	var chains []*Chain
	for i := range e.Connlimits {
		cl := &e.Connlimits[i]
		over := cl.N
		if e.Action != acl.Permit {
			over = cl.N - 1 // the Nth connection, this one included, is refused
		}
		if over <= 0 {
			return nil, nil, true
		}
		checks, own := b.connlimitChecks(k, ref, cl, over, ctx, refuseAs)
		if i > 0 {
			tok := keyToken(&acl.Connlimit{Key: limitKey(k.fam, cl).Kind, PrefixLen: limitKey(k.fam, cl).PrefixLen})
			for j := range checks {
				checks[j].role += "-" + tok
			}
		}
		out, chains = append(out, checks...), append(chains, own...)
	}
	if q := e.Quota; q != nil {
		c, _ := b.quotaCheck(ref, e, ctx)
		out = append(out, c)
	}
	if r := e.Rate; r != nil {
		out = append(out, b.rateCheck(k, ref, e, ctx))
	}
	return out, chains, false
}

// connlimitChecks compiles `connlimit` (T = over): the limit set S and,
// before it, what holds the sessions that were open before S existed
// (internal/conntrack counts them, reserve.go writes them): the gate S_g,
// closed from S's creation until the agent has counted, and the set S_r of
// keys with old sessions, which go to the chain S_res. There a key whose
// old sessions fill the limit (in S_rf) is refused; a key held at depth D
// is in S_rJ for every layer J up to D, so its connection is counted in
// each of those layers, the set S_lJ of `ct count over T-J`, and admitted
// only while it has fewer than T-D new sessions. Keys without old sessions
// pay the one lookup of S_r. See internal/conntrack's package doc for why
// this never admits over the limit.
//
// Why one chain and not a chain per depth: the kernel refuses rulesets
// whose jumps and gotos nest deeper than 16 chains (EMLINK), and a chain
// per depth holding all its layers would cost T^2 rules.
func (b *builder) connlimitChecks(k chainKey, ref EntryRef, cl *acl.Connlimit, over int, ctx ruleCtx, refuseAs refuser) ([]check, []*Chain) {
	key := limitKey(k.fam, cl)
	set := ConnlimitSetName(k.fam, k.name, k.dir, ref.Seq, cl, over)
	dep := !ctx.nf && key.Kind != acl.Total
	mk := func(name string, size uint32, kind SetKind, over int) {
		sk := key.SetKey()
		if kind == SetGate {
			sk = KeyNFProto
		}
		limit := set
		if name == set {
			limit = ""
		}
		b.rs.Sets = append(b.rs.Sets, &Set{Name: name, Key: sk, Size: size, Kind: kind,
			Entry: ref, KeyKind: cl.Key, PrefixLen: cl.PrefixLen, Over: over, Limit: limit})
	}
	mk(set, b.opt.SetSize, SetConnlimit, over)
	mk(GateSetName(set), 2, SetGate, 0)
	mk(ReservedSetName(set), 0, SetMember, over)
	mk(FullSetName(set), 0, SetMember, 0)
	// The reservation sets hold only keys that had sessions open when the
	// limit arrived: unsized, so that they cost about 1 KiB each until used
	// (a sized set preallocates its hash table, SetTableMemory); a layer
	// count grows to the kernel's cap for unsized dynamic sets, and a key
	// that finds it full is refused (its "-full" rule).
	//
	// The reservation chain matches nothing of the entry's own: a TCP
	// reset needs the protocol established in its rule, as nft does.
	var lead []Stmt
	if r, ok := slices.Concat(refuseAs("", false))[len(refuseAs("", false))-1].(*Reject); ok && r.TCPReset {
		lead = []Stmt{&L4Proto{Proto: acl.ProtoTCP}}
	}
	kdep := key.Kind != acl.Total // nothing in the chain matched the family yet
	res := &Chain{Name: ReserveChainName(set), Rules: []*Rule{{Comment: RuleComment(ref, RoleReserved),
		Stmts: slices.Concat(lead, []Stmt{&SetLookup{Set: FullSetName(set), Key: key, Dep: kdep}}, refuseAs(RoleConnlimit, true))}}}
	for _, j := range Layers(over) {
		r, l := MemberSetName(set, j), LayerSetName(set, j)
		mk(r, 0, SetMember, 0)
		mk(l, 0, SetConnlimit, over-j)
		member := &SetLookup{Set: r, Key: key, Dep: kdep}
		role := "layer" + strconv.Itoa(j)
		res.Rules = append(res.Rules,
			&Rule{Comment: RuleComment(ref, role), Stmts: slices.Concat(lead,
				[]Stmt{member, &ConnlimitAdd{Set: l, Key: key, Over: over - j}}, refuseAs(RoleConnlimit, true))},
			&Rule{Comment: RuleComment(ref, role+"-full"), Stmts: slices.Concat(lead,
				[]Stmt{member, &SetLookup{Set: l, Key: key, Invert: true}}, refuseAs(RoleConnlimit+"-full", false))})
	}
	return []check{
		{role: RoleGate, reason: RoleConnlimit, over: []Stmt{&SetLookup{Set: GateSetName(set), Key: Key{Family: k.fam, Kind: acl.Total}}}},
		{role: RoleDepth, jump: []Stmt{&SetLookup{Set: ReservedSetName(set), Key: key, Dep: dep},
			&Verdict{Kind: expr.VerdictJump, Chain: res.Name}}},
		{
			role:   RoleConnlimit,
			reason: RoleConnlimit,
			over:   []Stmt{&ConnlimitAdd{Set: set, Key: key, Over: over, Dep: dep}},
			full:   []Stmt{&SetLookup{Set: set, Key: key, Invert: true, Dep: dep}},
			blocks: true,
		},
	}, []*Chain{res}
}

// rateCheck compiles `rate`. With burst it is nft's token bucket, one per
// key (a source, or one element for total) in a set whose idle elements
// expire once their bucket would be full again anyway. Without burst it is
// a fixed window per key: a set with a timeout of one period whose
// element, added by the key's first connection, carries a bucket of N
// connections that does not refill within the window (windowLimit); the
// next connection after the window starts a new one. In a set, not in the
// rule, so that a change that rewrites the entry's rules (a resequence)
// keeps its buckets (RateSetName).
func (b *builder) rateCheck(k chainKey, ref EntryRef, e *acl.Entry, ctx ruleCtx) check {
	r := e.Rate
	window := r.Burst == 0
	lim := RateOver{Rate: r.N, Per: r.Per, Burst: r.Burst}
	timeout := rateTimeout(r, r.Burst)
	if window {
		lim, timeout = windowLimit(r.N, r.Per), acl.PeriodDuration(r.Per)
	}
	key := Key{Family: k.fam, Kind: r.Key}
	dep := !ctx.nf && r.Key != acl.Total
	set := RateSetName(ref, e)
	b.rs.Sets = append(b.rs.Sets, &Set{Name: set, Key: key.SetKey(), Size: b.opt.SetSize,
		Timeout: timeout, Kind: SetRate, Entry: ref, KeyKind: r.Key, Window: window})
	return check{
		role:   RoleRate,
		reason: RoleRate,
		over:   []Stmt{&RateUpdate{Set: set, Key: key, Rate: lim, Window: window, Dep: dep}},
		full:   []Stmt{&SetLookup{Set: set, Key: key, Invert: true, Dep: dep}},
		blocks: true,
	}
}

// rateTimeout is how long an idle source keeps its token bucket: at least
// the time the bucket takes to refill completely, and at least a minute.
func rateTimeout(r *acl.Rate, burst int) time.Duration {
	period := acl.PeriodDuration(r.Per)
	refill := period * time.Duration((burst+r.N-1)/r.N)
	return max(refill, period, time.Minute)
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
func (b *builder) supported(path entryAt, e *acl.Entry) bool {
	if e.Rate != nil && e.Rate.N <= 0 {
		b.errorf(path.String(), "rate must be at least 1")
		return false
	}
	if e.Rate != nil {
		if err := acl.CheckRate(e.Rate); err != nil {
			b.errorf(path.String(), "%v", err)
			return false
		}
	}
	if e.Quota != nil && e.Action != acl.Permit {
		b.errorf(path.String(), "quota needs a permit entry (it counts the bytes of admitted connections)")
		return false
	}
	if e.BlockFor != nil && e.BlockFor.Seconds <= 0 {
		b.errorf(path.String(), "block-for must be at least 1 second")
		return false
	}
	return true
}

// match builds the statements that select an entry's packets: addresses,
// the protocol (as ports when the entry has ports), the socket owner.
func (b *builder) match(path entryAt, f acl.Family, e *acl.Entry) ([]Stmt, ruleCtx, bool) {
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
	proto, ok := b.protoMatch(path, e)
	if !ok {
		return nil, ctx, false
	}
	out = append(out, proto...)
	if o := e.Owner; o != nil {
		uid, ok := b.uid(path, o)
		if !ok {
			return nil, ctx, false
		}
		out = append(out, &SkUID{UID: uid})
	}
	return out, ctx, true
}

// protoMatch is `meta l4proto P`, or the port matches (which imply it).
func (b *builder) protoMatch(path entryAt, e *acl.Entry) ([]Stmt, bool) {
	if e.Proto == acl.ProtoAny {
		return nil, true
	}
	if e.Proto < 0 || e.Proto > 255 {
		b.errorf(path.String(), "invalid protocol %d", e.Proto)
		return nil, false
	}
	if e.SrcPort.Op == acl.PortNone && e.DstPort.Op == acl.PortNone {
		return []Stmt{&L4Proto{Proto: uint8(e.Proto)}}, true
	}
	switch e.Proto {
	case acl.ProtoTCP, acl.ProtoUDP, acl.ProtoSCTP:
	default:
		b.errorf(path.String(), "ports need protocol tcp, udp or sctp")
		return nil, false
	}
	for _, p := range []acl.PortMatch{e.SrcPort, e.DstPort} {
		if (p.Op == acl.PortLt && p.Lo == 0) || (p.Op == acl.PortGt && p.Lo == 65535) ||
			(p.Op == acl.PortRange && p.Lo > p.Hi) {
			b.errorf(path.String(), "port match matches no port")
			return nil, false
		}
	}
	return []Stmt{&Ports{Proto: uint8(e.Proto), Src: e.SrcPort, Dst: e.DstPort, Dep: true}}, true
}

// uid resolves `user NAME` (with Options.LookupUser) or `uid N`.
func (b *builder) uid(path entryAt, o *acl.Owner) (uint32, bool) {
	if o.User == "" {
		if o.UID < 0 || int64(o.UID) > 0xffffffff {
			b.errorf(path.String(), "invalid uid %d", o.UID)
			return 0, false
		}
		return uint32(o.UID), true
	}
	if b.opt.LookupUser == nil {
		b.errorf(path.String(), "user %s: no user database to resolve it (use uid N)", o.User)
		return 0, false
	}
	uid, err := b.opt.LookupUser(o.User)
	if err != nil {
		b.errorf(path.String(), "user %s: %v", o.User, err)
		return 0, false
	}
	return uid, true
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

// refusal is how an entry refuses: hard-drop and `refuse drop` drop;
// `refuse message` marks the connection for the responder
// (compile_message.go); TCP entries reset; entries of another protocol
// answer ICMP administratively prohibited; `ip`/`ipv6` entries jump to the
// refuse chain, which tells TCP from the rest.
func (b *builder) refusal(e *acl.Entry) []Stmt {
	switch {
	case e.Drops():
		return []Stmt{&Verdict{Kind: expr.VerdictDrop}}
	case e.Refuse.Kind == acl.RefuseMessage:
		return b.messageRefusal(e)
	case e.Proto == acl.ProtoTCP:
		return []Stmt{&Reject{TCPReset: true}}
	case e.Proto == acl.ProtoAny:
		return []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}}
	}
	return []Stmt{&Reject{}}
}

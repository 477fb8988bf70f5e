package nft

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// ResetMark is the ct mark bit of a flow that the agent wants ended: every
// base chain answers its next packet with a TCP reset.
const ResetMark = 0x40000000

// AdoptMark is the ct mark bit that the base chains set on a TCP session
// picked up mid-stream (open before conntrack tracked it): the agent holds
// it as a session open before its limit once it has seen a reply.
const AdoptMark = 0x10000000

// GhostMark is the ct mark bit that the agent puts, instead of AdoptMark,
// on a flow picked up mid-stream that has seen no reply (a ghost: forged
// segments, or the end of a connection that was not tracked): the agent's
// adoption no longer reads it, and the base chains give it back AdoptMark
// when a reply comes (a session after all), to be adopted then.
const GhostMark = 0x08000000

// GraceSet is the set whose elements (one per family) say that the table
// is in its adoption grace: created with the table, they expire after
// AdoptGrace (the set's timeout).
const GraceSet = "adopt_grace"

// AdoptGrace is how long after the table is created every TCP session
// picked up mid-stream is let through unjudged (those open before the
// firewall, and before conntrack tracked the namespace); from then on the
// ACLs judge such a packet as a connection (without its limits).
const AdoptGrace = 2 * time.Minute

// Options are the host facts that Compile needs besides the configuration.
type Options struct {
	Table         string            // table name, family inet; "" means DefaultTable
	MgmtInterface string            // Linux name of `interface management 0`
	InterfaceMap  map[string]string // "0/1" (or "ethernet0/1") -> "eth1" for `interface ethernet 0/1`
	// SetSize is the declared size of every limit set (connlimit, rate,
	// quota, block-for): at most SetSize keys, and the kernel preallocates
	// its hash table for them (SetTableMemory). 0 leaves them unsized: they
	// start at about 1 KiB and grow on demand up to the kernel's cap of
	// UnsizedSetCap keys. Either way a full set refuses new keys (the
	// "-full" rules: never fails open).
	SetSize uint32
	// MaxSetMemory, when not 0, is the most kernel memory in bytes that the
	// ruleset's sets may take (Ruleset.SetMemory); Compile refuses a config
	// that needs more.
	MaxSetMemory uint64
	// ConntrackMax is the size of the conntrack table
	// (nf_conntrack_max; 0: unknown), which bounds how many connlimit keys
	// can be in the sets at once (the MaxSetMemory check).
	ConntrackMax uint64
	// LookupUser resolves `user NAME` to a uid (LookupUser in this package
	// uses the host's user database); nil makes `user NAME` an error.
	LookupUser func(name string) (uint32, error)
	// Zone is the local time zone of time ranges (nil: UTC) and Now the
	// instant whose UTC offset converts their periodic clauses to the
	// kernel's UTC clock (compile_time.go).
	Zone *time.Location
	Now  time.Time
	// MessagePort is the first local port of the agent's refuse message
	// responder; 0 means DefaultMessagePort.
	MessagePort uint16
	// LogGroup is the NFLOG group of `log` entries; 0 means DefaultLogGroup.
	LogGroup uint16
	// Cache, when not nil, keeps each entry's compiled rules for the next
	// Compile with it (compile_cache.go).
	Cache *Cache
	// MapRun is the fewest entries in a row that Compile looks up in a
	// classification map instead of testing one rule each (compile_map.go);
	// 0 means DefaultMapRun, a negative value never.
	MapRun int
}

// Compile turns a configuration into the ruleset of our table. It is pure
// and deterministic: equal configs and options give equal rulesets. Only
// ACLs applied to an interface are compiled. It returns every problem found,
// joined, each an *acl.Error; the message of an option that the compiler
// does not implement yet says so.
func Compile(c *acl.Config, o Options) (*Ruleset, error) {
	if c == nil {
		c = acl.New()
	}
	if o.Table == "" {
		o.Table = DefaultTable
	}
	b := &builder{cfg: c, opt: o, rs: &Ruleset{Table: o.Table, memo: &memo{}}}
	if o.Cache != nil {
		o.Cache.begin(o)
		ok := false
		defer func() { o.Cache.end(ok) }()
		defer func() { ok = len(b.errs) == 0 }()
	}
	binds := b.bindings()
	b.rs.Sets = append(b.rs.Sets, &Set{Name: GraceSet, Key: KeyNFProto, Size: 2, Timeout: AdoptGrace, Kind: SetGrace, KeyKind: acl.Total})
	b.messages(chainKeys(binds))
	var aclChains []*Chain
	for _, k := range chainKeys(binds) {
		aclChains = append(aclChains, b.aclChain(k)...)
	}
	if len(b.errs) == 0 {
		b.checkSetMemory()
	}
	if len(b.errs) > 0 {
		return nil, errors.Join(b.errs...)
	}
	b.rs.Chains = b.quotaChains(baseChains(binds))
	if len(b.rs.Messages) > 0 {
		addMessageGuards(b.rs.Chains, b.rs.Messages)
		b.rs.Chains = append(b.rs.Chains, messageChain(b.rs.Messages))
	}
	b.rs.Chains = append(b.rs.Chains, refuseChain())
	b.rs.Chains = append(b.rs.Chains, aclChains...)
	b.rs.Chains = append(b.rs.Chains, b.extra...)
	if o.Cache != nil {
		b.rs.Counters = o.Cache.sortCounters(b.rs.Counters)
	} else {
		sort.Strings(b.rs.Counters)
	}
	// Two permit entries with the same match share their rate set
	// (windowBase): it is declared once, as the first one's.
	slices.SortStableFunc(b.rs.Sets, func(x, y *Set) int { return strings.Compare(x.Name, y.Name) })
	b.rs.Sets = slices.CompactFunc(b.rs.Sets, func(x, y *Set) bool { return x.Name == y.Name })
	return b.rs, nil
}

// builder collects the ruleset's counters and sets, and the errors.
type builder struct {
	cfg  *acl.Config
	opt  Options
	rs   *Ruleset
	errs []error
	// quotas and quotaIDs are the quotas compiled so far and their ct
	// mark IDs (compile_quota.go).
	quotas   []quotaRef
	quotaIDs map[string]uint32

	extra      []*Chain        // log and blocked-refusal chains, after the ACL chains
	extraNames map[string]bool // names in extra
}

// extraChain adds the chain that mk makes to extra, unless a chain of that
// name is there already, and returns a jump or goto to it (kind).
func (b *builder) extraChain(name string, kind expr.VerdictKind, mk func() *Chain) []Stmt {
	if b.extraNames == nil {
		b.extraNames = map[string]bool{}
	}
	if !b.extraNames[name] {
		b.extraNames[name] = true
		ch := mk()
		ch.Name = name
		b.extra = append(b.extra, ch)
	}
	return []Stmt{&Verdict{Kind: kind, Chain: name}}
}

func (b *builder) errorf(path, format string, args ...any) {
	b.errs = append(b.errs, &acl.Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// binding is one access-group: traffic of an interface in a direction goes
// to an ACL chain.
type binding struct {
	ifname string
	out    bool
	key    chainKey
}

// chainKey names an ACL chain: one per applied ACL and direction.
type chainKey struct {
	fam  acl.Family
	name string
	dir  acl.Direction
}

func (k chainKey) chain() string { return ChainName(k.fam, k.name, k.dir) }

// bindings resolves every access-group to a Linux interface name, in the
// config's interface order.
func (b *builder) bindings() []binding {
	var out []binding
	seen := map[[3]string]string{}
	for _, itf := range b.cfg.Interfaces {
		path := ifacePath(itf)
		name, ok := b.linuxName(itf, path)
		if !ok {
			continue
		}
		for f := acl.IPv4; f <= acl.IPv6; f++ {
			for d := acl.In; d <= acl.Out; d++ {
				a := itf.Groups[f][d]
				if a == "" {
					continue
				}
				id := [3]string{name, f.String(), d.String()}
				if prev, dup := seen[id]; dup {
					b.errorf(path, "%s and %s are both Linux interface %s: two %s access-groups %s", prev, path, name, f, d)
					continue
				}
				seen[id] = path
				out = append(out, binding{ifname: name, out: d == acl.Out, key: chainKey{f, a, d}})
			}
		}
	}
	return out
}

func ifacePath(itf *acl.Interface) string {
	switch itf.Kind {
	case acl.IfManagement:
		return "interface management " + itf.Name
	case acl.IfEthernet:
		return "interface ethernet " + itf.Name
	}
	return "interface " + itf.Name
}

// linuxName maps an interface block to the Linux interface it means.
func (b *builder) linuxName(itf *acl.Interface, path string) (string, bool) {
	name := itf.Name
	switch itf.Kind {
	case acl.IfManagement:
		name = b.opt.MgmtInterface
		if name == "" {
			b.errorf(path, "no Linux interface is set for management 0 (aclagent --mgmt-interface)")
			return "", false
		}
	case acl.IfEthernet:
		name = b.opt.InterfaceMap[itf.Name]
		if name == "" {
			name = b.opt.InterfaceMap["ethernet"+itf.Name]
		}
		if name == "" {
			b.errorf(path, "no Linux interface is mapped to ethernet %s (aclagent --interface-map)", itf.Name)
			return "", false
		}
	}
	if len(name) == 0 || len(name) >= 16 {
		b.errorf(path, "invalid Linux interface name %q", name)
		return "", false
	}
	return name, true
}

// chainKeys returns the applied ACL chains, sorted by family, name and
// direction.
func chainKeys(binds []binding) []chainKey {
	seen := map[chainKey]bool{}
	var keys []chainKey
	for _, bd := range binds {
		if !seen[bd.key] {
			seen[bd.key] = true
			keys = append(keys, bd.key)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.fam != b.fam {
			return a.fam < b.fam
		}
		if a.name != b.name {
			return a.name < b.name
		}
		return a.dir < b.dir
	})
	return keys
}

// findACL looks an access list up without relying on Config methods.
func (b *builder) findACL(f acl.Family, name string) *acl.ACL {
	for _, a := range b.cfg.ACLs {
		if a.Family == f && a.Name == name {
			return a
		}
	}
	return nil
}

// baseChains builds the prerouting, input, forward and output chains:
// established and related traffic first, then one jump per access-group
// (`in` on prerouting, before any NAT, for connections to the host and
// routed ones alike; `out` on output and forward). The reset-mark rule is
// on input, forward and output.
func baseChains(binds []binding) []*Chain {
	established := func() *Rule {
		return &Rule{
			Comment: "established",
			Stmts:   []Stmt{&CtState{States: CtEstablished | CtRelated}, &Verdict{Kind: expr.VerdictAccept}},
		}
	}
	adopt := func() []*Rule {
		return []*Rule{{
			// Why: a SYN on the tuple of a flow picked up mid-stream that
			// has seen no reply is not a new entry to conntrack (it ignores
			// the SYN, then gets in sync on the SYN/ACK): the connection
			// would go on in that flow, with its mark, and skip every limit
			// (and a confirmed flow is never added to a count). A client
			// that forged a segment on its own tuple first would open a
			// connection uncounted. Refused: a legitimate SYN has a tuple
			// of its own.
			Comment: "adopted-syn",
			Stmts: []Stmt{&CtState{States: CtNew}, &TCPSYN{}, &CtMarkEq{Mask: AdoptMark | GhostMark, Neq: true},
				&Reject{TCPReset: true}},
		}, {
			// Why: a TCP session that was open before conntrack tracked the
			// namespace (before the first install, or while our table was
			// missing) is picked up on its next packet as `ct state new`
			// without a SYN (nf_conntrack_tcp_loose; KERNEL-NOTES). In the
			// table's grace (GraceSet, AdoptGrace after it was created) it
			// is let through unjudged and marked: open sessions, not new
			// connections, that the agent counts as old once they have
			// seen a reply (conntrack.AdoptMark). In prerouting too, before
			// the `in` ACLs judge it.
			Comment: "adopt",
			Stmts: []Stmt{&CtState{States: CtNew}, &TCPSYN{Not: true}, &SetLookup{Set: GraceSet, Key: Key{Kind: acl.Total}},
				&CtMarkID{Mask: AdoptMark, ID: AdoptMark}, &Verdict{Kind: expr.VerdictAccept}},
		}, {
			// Why: after the grace such a packet is judged by the ACLs
			// like a connection, so that a deny or the implicit deny
			// refuses an ACK, FIN or data segment that no SYN opened (a
			// scan, or an injection); a permit admits it without its
			// limits (the checks skip AdoptMark), and the agent counts it
			// once it has seen a reply: a forged segment fills no limit.
			Comment: "pickup",
			Stmts: []Stmt{&CtState{States: CtNew}, &TCPSYN{Not: true}, &CtMarkEq{Mask: GhostMark},
				&CtMarkID{Mask: AdoptMark, ID: AdoptMark}},
		}}
	}
	// Why: a ghost (GhostMark) that gets a reply is a session after all:
	// it gets AdoptMark back, and the agent adopts it. Before the
	// established rule, which the reply passes. In prerouting and output:
	// where every reply comes first.
	answered := func() *Rule {
		return &Rule{Comment: "ghost-answered", Stmts: []Stmt{&CtDirection{Reply: true}, &CtMarkBit{Bit: GhostMark},
			&CtMarkID{Mask: GhostMark | AdoptMark, ID: AdoptMark}}}
	}
	mk := func(hook string) *Chain {
		return &Chain{Name: hook, Hook: &Hook{Hook: hook, Priority: 0}, Rules: append([]*Rule{{
			// Why: a flow the agent marked (conntrack.ResetMark) is ended by a
			// reset on its next packet; `! rst` keeps our own resets, which
			// pass the output chain, from being refused in turn (KERNEL-NOTES).
			Comment: "reset-mark",
			Stmts:   []Stmt{&CtMarkBit{Bit: ResetMark}, &TCPNoRST{Dep: true}, &Reject{TCPReset: true}},
		}, established()}, adopt()...)}
	}
	pre := &Chain{Name: "prerouting", Hook: &Hook{Hook: "prerouting", Priority: PriorityDecide}, Rules: append([]*Rule{answered(), established()}, adopt()...)}
	input, forward, output := mk("input"), mk("forward"), mk("output")
	output.Rules = slices.Insert(output.Rules, 1, answered()) // after reset-mark, before established
	for _, out := range []bool{false, true} {
		for _, bd := range binds {
			if bd.out != out {
				continue
			}
			r := func() *Rule {
				return &Rule{
					Comment: bindComment(out, bd.ifname, bd.key.fam, bd.key.name),
					Stmts: []Stmt{&Iface{Out: out, Name: bd.ifname}, &NFProto{Family: bd.key.fam},
						&Verdict{Kind: expr.VerdictJump, Chain: bd.key.chain()}},
				}
			}
			if out {
				output.Rules = append(output.Rules, r())
				forward.Rules = append(forward.Rules, r())
			} else {
				pre.Rules = append(pre.Rules, r())
			}
		}
	}
	return []*Chain{pre, input, forward, output}
}

// refuseChain is the shared refusal of connections of any protocol: TCP
// gets a reset, everything else ICMP administratively prohibited.
func refuseChain() *Chain {
	return &Chain{Name: RefuseChain, Rules: []*Rule{
		{Comment: "refuse tcp", Stmts: []Stmt{&L4Proto{Proto: acl.ProtoTCP}, &Reject{TCPReset: true}}},
		{Comment: "refuse", Stmts: []Stmt{&Reject{}}},
	}}
}

// aclChain compiles one applied ACL in one direction: the blocked-source
// rules (per entry with block-for), its entries in seq order, then the
// implicit rules. The block chains of its entries follow the chain.
func (b *builder) aclChain(k chainKey) []*Chain {
	a := b.findACL(k.fam, k.name)
	if a == nil {
		b.errorf("", "%s access-list %q does not exist", k.fam, k.name)
		return nil
	}
	ch := &Chain{Name: k.chain()}
	ch.Rules = append(ch.Rules, b.blockedRules(k, a)...)
	rules, own := b.entries(k, a.Entries)
	ch.Rules = append(ch.Rules, rules...)
	if k.fam == acl.IPv6 {
		// Why: neighbour discovery is untracked by conntrack, so it reaches
		// the ACL; refusing it would cut the interface off IPv6 altogether.
		ch.Rules = append(ch.Rules, &Rule{
			Comment: RuleComment(EntryRef{k.fam, k.name, k.dir, 0}, RolePermitND),
			Stmts:   []Stmt{&ICMPv6Types{Lo: 133, Hi: 136}, &Verdict{Kind: expr.VerdictReturn}},
		})
	}
	impl := ImplicitDenyCounter(k.fam, k.name, k.dir)
	b.rs.Counters = append(b.rs.Counters, impl)
	ch.Rules = append(ch.Rules, &Rule{
		Comment: RuleComment(EntryRef{k.fam, k.name, k.dir, 0}, ""),
		Stmts:   []Stmt{&CounterRef{Name: impl}, &Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}},
	})
	return append([]*Chain{ch}, own...)
}

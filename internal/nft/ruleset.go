package nft

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// Ruleset is a compiled configuration: the whole content of our one table.
// It is a plain value, built by Compile, rendered as nft text by String, and
// installed by the applier. Slices are sorted/stable so that equal configs
// give equal rulesets.
type Ruleset struct {
	Table    string   // table name; the family is always inet
	Counters []string // named counter objects (they keep values across rule replacement)
	Sets     []*Set   // dynamic limit sets (they keep kernel counts)
	Chains   []*Chain // base chains first, then regular chains
	// Messages are the refuse message texts and their responder ports
	// (the rules of MessageChain redirect to them); the agent serves them.
	Messages []Message

	memo *memo // what is computed once per ruleset (nil: nothing kept)
}

// memo keeps what is derived from a ruleset, which never changes once
// built: Renewals' views (each ruleset is compared once as the new one,
// then once as the old one).
type memo struct {
	mu    sync.Mutex
	cfg   *acl.Config
	views map[string]chainView
}

// SetKey is the key type of a limit set.
type SetKey int

// Set key types.
const (
	KeyIPv4  SetKey = iota // ipv4_addr
	KeyIPv6                // ipv6_addr
	KeyProto               // inet_proto (unused by Compile: see KeyNFProto)
	// KeyNFProto is nf_proto: `meta nfproto`, the constant key of `total`
	// limits. Each ACL chain sees one family only, so the key is constant
	// even for `ip` entries, where `meta l4proto` would count per protocol.
	KeyNFProto
)

// Set is a dynamic set that carries per-key connection counts (or other
// per-key state). Its name encodes everything that an element keeps from its
// creation (limit, key kind), so a changed limit or key gets a new set.
type Set struct {
	Name string
	Key  SetKey
	Size uint32 // 0: no size (grows on demand; the kernel caps it at UnsizedSetCap keys once a rule adds to it)
	// Timeout, when not zero, gives the set the timeout flag and this
	// default element timeout (`flags dynamic,timeout; timeout 1m`): rate
	// sets forget idle keys. Connlimit sets have none (the kernel drops an
	// element when its count reaches zero).
	Timeout time.Duration
	Kind    SetKind

	// What the set counts, for the agent (attributing sessions, creating
	// elements with a reduced budget): the entry, its key, and the N of the
	// `ct count over N` that every element created by the rule carries.
	Entry     EntryRef
	KeyKind   acl.KeyKind
	PrefixLen int  // PerPrefix only
	Over      int  // SetConnlimit only
	Window    bool // SetRate only: a fixed window (no burst), not a token bucket
	// Limit is the limit set that a reservation object (gate, depth map,
	// layer count) belongs to; "" for every other set.
	Limit string
	// Map is the content of a classification map (SetVerdictMap,
	// SetCounterMap).
	Map *VMap
}

// SetKind tells what a set's elements carry.
type SetKind int

// Set kinds.
const (
	SetConnlimit  SetKind = iota // elements carry `ct count over Over`
	SetRate                      // elements carry `limit rate over ...` (per-source rate)
	SetGate                      // a connlimit's gate (nf_proto), created closed, opened by the agent
	SetMember                    // plain membership, filled by the agent (reservations)
	SetBlocked                   // sources blocked by block-for, elements with timeouts
	SetLoad                      // the agent's "over load-limit" flag of an entry (nf_proto)
	SetQuota                     // elements carry `quota over ...`, with timeouts (quota windows)
	SetVerdictMap                // a classification map of entries (Map; compile_map.go)
	SetCounterMap                // a classification map of plain permits, elements naming their counters (Map)
	SetGrace                     // the table's adoption grace (GraceSet): both families, created with the table, expiring
)

// String names the kind for metrics: "connlimit", "rate", "gate", ...
func (k SetKind) String() string {
	switch k {
	case SetConnlimit:
		return "connlimit"
	case SetRate:
		return "rate"
	case SetGate:
		return "gate"
	case SetMember:
		return "reservation"
	case SetBlocked:
		return "blocked"
	case SetLoad:
		return "load"
	case SetQuota:
		return "quota"
	case SetVerdictMap:
		return "map"
	case SetCounterMap:
		return "counter-map"
	case SetGrace:
		return "grace"
	}
	return "unknown"
}

// Hook describes a base chain.
type Hook struct {
	Hook     string // "prerouting", "input", "forward" or "output"
	Priority int
	Type     ChainType
}

// ChainType is the type of a base chain: filter chains see every packet;
// nat chains only the first packet of a connection, and may redirect it.
type ChainType int

// Chain types.
const (
	FilterChain ChainType = iota // type filter
	NATChain                     // type nat
)

// Chain is a base chain (Hook != nil, policy accept) or a regular chain.
type Chain struct {
	Name  string
	Hook  *Hook
	Rules []*Rule
	// Mapped marks the chain of an entry in a classification map: its
	// rules without the match, reached from the map's elements.
	Mapped bool
}

// Rule is one rule: statements in order, and a comment that identifies it
// (`acl=check seq=10`); the comment is how rules are found again.
type Rule struct {
	Comment string
	Stmts   []Stmt

	text atomic.Pointer[string]        // String, rendered once (rules do not change once built)
	ref  atomic.Pointer[parsedComment] // ParseComment of Comment, parsed once
}

type parsedComment struct {
	ref  EntryRef
	role string
	ok   bool
}

// entryRef is ParseComment(r.Comment), parsed once per rule.
func (r *Rule) entryRef() (EntryRef, string, bool) {
	if p := r.ref.Load(); p != nil {
		return p.ref, p.role, p.ok
	}
	ref, role, ok := ParseComment(r.Comment)
	r.ref.Store(&parsedComment{ref, role, ok})
	return ref, role, ok
}

// Stmt is one nft statement or match. It renders both ways: as nft text,
// exactly as `nft list table` prints it, and as the netlink expressions that
// nft itself would generate for that text.
type Stmt interface {
	String() string
	Exprs() []expr.Any
}

package nft

import (
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// block-for: a source that goes over a limit of an entry with `block-for
// SECONDS` is refused on the whole ACL (in that direction) for SECONDS.
//
//	chain ip_check_in {
//		ct state new ip saddr @ip_check_in_blocked counter name "ip_check_in_blocked_refused" jump refuse
//		... entries; an over-limit refusal of an entry with block-for is `jump ip_check_in_10_block` ...
//	}
//	chain ip_check_in_10_block {
//		add @ip_check_in_blocked { ip saddr timeout 1m }
//		REFUSE
//	}
//
// The add sits in a rule of its own: when the blocked set is full the add
// fails and breaks its rule, and the next rule still refuses the
// connection (only the block is lost, never the refusal). `flush` (ending
// the source's open sessions) is the agent's part.

// RoleBlocked is the role of the rule at the top of an ACL chain that
// refuses blocked sources: `acl=check dir=in implicit-blocked`.
const RoleBlocked = "blocked"

// Roles of the rules of an entry's block chain.
const (
	RoleBlock       = "block"        // adds the source to the blocked set
	RoleBlockRefuse = "block-refuse" // refuses the connection
)

// BlockedSetName is the set of sources blocked on an ACL in a direction:
// "ip_check_in_blocked". The agent lists it and deletes from it for `clear
// access-list blocked`.
func BlockedSetName(f acl.Family, aclName string, d acl.Direction) string {
	return shorten(famPrefix(f) + "_" + aclName + "_" + d.String() + "_blocked")
}

// BlockedCounter is the counter of connections refused because their
// source was blocked.
func BlockedCounter(f acl.Family, aclName string, d acl.Direction) string {
	return shorten(famPrefix(f) + "_" + aclName + "_" + d.String() + "_blocked_refused")
}

// BlockChainName is the chain that blocks the source and refuses, jumped to
// by the over-limit refusals of an entry with block-for: "ip_check_in_10_block".
func BlockChainName(r EntryRef) string { return shorten(r.base() + "_block") }

// BlockAdd adds the packet's source to a set with a timeout:
// `add @b { ip saddr timeout 1m }`. It emits the `meta nfproto` dependency
// (it is always the first statement of its rule).
type BlockAdd struct {
	Set     string
	Family  acl.Family
	Timeout time.Duration
}

// String renders the statement as nft lists it.
func (s *BlockAdd) String() string {
	return "add @" + s.Set + " { " + addrField(s.Family, false) + " timeout " + durationString(s.Timeout) + " }"
}

// Exprs implements Stmt.
func (s *BlockAdd) Exprs() []expr.Any {
	off, size := addrOffset(s.Family, false)
	return append(nfprotoDep(s.Family), netPayload(off, size),
		&expr.Dynset{SrcRegKey: 1, SetName: s.Set, Operation: unix.NFT_DYNSET_OP_ADD, Timeout: s.Timeout})
}

// blockFor returns the longest block-for of an ACL's entries (0: none).
func blockFor(a *acl.ACL) time.Duration {
	var d time.Duration
	for _, e := range a.Entries {
		if e.BlockFor != nil {
			d = max(d, time.Duration(e.BlockFor.Seconds)*time.Second)
		}
	}
	return d
}

// blockedRule creates the blocked set of an ACL chain and returns the rule
// that refuses blocked sources, or nil when no entry has block-for.
func (b *builder) blockedRule(k chainKey, a *acl.ACL) *Rule {
	longest := blockFor(a)
	if longest == 0 {
		return nil
	}
	set := BlockedSetName(k.fam, k.name, k.dir)
	key := Key{Family: k.fam, Kind: acl.PerSource}
	b.rs.Sets = append(b.rs.Sets, &Set{Name: set, Key: key.SetKey(), Size: b.opt.SetSize, Timeout: longest,
		Kind: SetBlocked, Entry: EntryRef{k.fam, k.name, k.dir, 0}, KeyKind: acl.PerSource})
	cnt := BlockedCounter(k.fam, k.name, k.dir)
	b.rs.Counters = append(b.rs.Counters, cnt)
	ref := EntryRef{k.fam, k.name, k.dir, 0}
	refuse := b.loggedBlocked(a, ref, []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}})
	return &Rule{
		Comment: RuleComment(ref, RoleBlocked),
		Stmts:   append([]Stmt{&CtState{States: CtNew}, &SetLookup{Set: set, Key: key, Dep: true}, &CounterRef{Name: cnt}}, refuse...),
	}
}

// blockChain returns the block chain of an entry with block-for; refuse is
// the entry's refusal.
func blockChain(k chainKey, ref EntryRef, e *acl.Entry, refuse []Stmt) *Chain {
	last := standalone(e, refuse)
	return &Chain{Name: BlockChainName(ref), Rules: []*Rule{
		{Comment: RuleComment(ref, RoleBlock), Stmts: []Stmt{&BlockAdd{
			Set: BlockedSetName(k.fam, k.name, k.dir), Family: k.fam,
			Timeout: time.Duration(e.BlockFor.Seconds) * time.Second}}},
		{Comment: RuleComment(ref, RoleBlockRefuse), Stmts: last},
	}}
}

// standalone makes a refusal fit for a rule of its own (in a block or log
// chain): nft refuses `reject with tcp reset` in a rule that has not
// matched TCP, so the protocol match comes first.
func standalone(e *acl.Entry, refuse []Stmt) []Stmt {
	if e.Proto == acl.ProtoTCP && len(refuse) == 1 {
		if r, ok := refuse[0].(*Reject); ok && r.TCPReset {
			return []Stmt{&L4Proto{Proto: acl.ProtoTCP}, r}
		}
	}
	return refuse
}

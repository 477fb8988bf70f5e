package nft

import (
	"slices"
	"strconv"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// block-for: a source that goes over a limit of an entry with `block-for
// SECONDS` is refused on the whole ACL (in that direction) for SECONDS. The
// lockout is the entry's: each such entry has its own blocked set (its
// timeout, its `flush`, its `show`/`clear access-list blocked`).
//
//	chain ip_check_in {
//		ct state new ip saddr @ip_check_in_10_blocked counter name "ip_check_in_blocked_refused" jump refuse
//		ct state new meta nfproto @ip_check_in_10_blocked_full counter name "ip_check_in_blocked_refused" jump refuse
//		... entries; an over-limit refusal of seq 10 is `jump ip_check_in_10_block` ...
//	}
//	(`jump refuse` as the entry refuses: `drop` for a dropping entry,
//	`jump refuse_message_4421` for one with a refuse message: blockedRefusal)
//	chain ip_check_in_10_block {
//		add @ip_check_in_10_blocked { ip saddr timeout 1m } REFUSE             (role "block")
//		add @ip_check_in_10_blocked_full { meta nfproto timeout 1m } REFUSE    (role "block-full")
//		REFUSE                                                                 (role "block-refuse")
//	}
//
// Never failing open: when the blocked set is full the kernel's add fails
// and breaks the "block" rule (KERNEL-NOTES: a full set fails open). The
// source could then not be locked out, so the entry's full flag (one
// element, size 2, the same timeout) is set instead, and while it is set
// the ACL refuses every new connection: a full blocked set locks out
// everyone rather than letting a source it should hold through. The last
// rule refuses in any case (only the block can be lost, never the refusal).
// `flush` (ending the source's open sessions) is the agent's part.

// Roles of the rules at the top of an ACL chain that refuse blocked
// sources: `acl=check dir=in seq=10 blocked`, `... seq=10 blocked-full`.
const (
	RoleBlocked     = "blocked"
	RoleBlockedFull = "blocked-full"
)

// Roles of the rules of an entry's block chain.
const (
	RoleBlock       = "block"        // adds the source to the blocked set and refuses
	RoleBlockFull   = "block-full"   // the set was full: sets the full flag and refuses
	RoleBlockRefuse = "block-refuse" // refuses the connection
)

// BlockedSetName is the set of sources blocked by one entry with
// block-for, in one direction: "ip_check_in_10_blocked". The agent lists
// it (show, flush) and deletes from it for `clear access-list blocked`.
func BlockedSetName(r EntryRef) string { return shorten(r.base() + "_blocked") }

// BlockedFullSetName is the flag set of an entry's blocked set that was
// full: "ip_check_in_10_blocked_full" (type nf_proto, one element with the
// entry's timeout).
func BlockedFullSetName(r EntryRef) string { return shorten(r.base() + "_blocked_full") }

// BlockedCounter is the counter of connections refused on an ACL and
// direction because their source was blocked (by any entry).
func BlockedCounter(f acl.Family, aclName string, d acl.Direction) string {
	return shorten(famPrefix(f) + "_" + aclName + "_" + d.String() + "_blocked_refused")
}

// BlockChainName is the chain that blocks the source and refuses, jumped to
// by the over-limit refusals of an entry with block-for: "ip_check_in_10_block".
func BlockChainName(r EntryRef) string { return shorten(r.base() + "_block") }

// BlockAdd adds the packet's source to a set with a timeout:
// `add @b { ip saddr timeout 1m }`, or with Flag the constant key
// `add @b { meta nfproto timeout 1m }`. It emits the `meta nfproto`
// dependency (it is always the first statement of its rule).
type BlockAdd struct {
	Set     string
	Family  acl.Family
	Flag    bool
	Timeout time.Duration
}

// String renders the statement as nft lists it.
func (s *BlockAdd) String() string {
	key := addrField(s.Family, false)
	if s.Flag {
		key = "meta nfproto"
	}
	return "add @" + s.Set + " { " + key + " timeout " + durationString(s.Timeout) + " }"
}

// Exprs implements Stmt.
func (s *BlockAdd) Exprs() []expr.Any {
	dyn := &expr.Dynset{SrcRegKey: 1, SetName: s.Set, Operation: unix.NFT_DYNSET_OP_ADD, Timeout: s.Timeout}
	if s.Flag {
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, dyn}
	}
	off, size := addrOffset(s.Family, false)
	return append(nfprotoDep(s.Family), netPayload(off, size), dyn)
}

// blockEntries returns the entries of an ACL with block-for.
func blockEntries(a *acl.ACL) []*acl.Entry {
	var out []*acl.Entry
	for _, e := range a.Entries {
		if e.BlockFor != nil && e.BlockFor.Seconds > 0 && e.Action != acl.Remark {
			out = append(out, e)
		}
	}
	return out
}

// blockedRules creates the blocked sets of an ACL chain's entries with
// block-for and returns the rules that refuse their blocked sources (none
// when no entry has block-for).
func (b *builder) blockedRules(k chainKey, a *acl.ACL) []*Rule {
	entries := blockEntries(a)
	if len(entries) == 0 {
		return nil
	}
	cnt := BlockedCounter(k.fam, k.name, k.dir)
	b.rs.Counters = append(b.rs.Counters, cnt)
	key := Key{Family: k.fam, Kind: acl.PerSource}
	var out []*Rule
	for _, e := range entries {
		ref := EntryRef{k.fam, k.name, k.dir, e.Seq}
		timeout := time.Duration(e.BlockFor.Seconds) * time.Second
		set, full := BlockedSetName(ref), BlockedFullSetName(ref)
		b.rs.Sets = append(b.rs.Sets,
			&Set{Name: set, Key: key.SetKey(), Size: b.opt.SetSize, Timeout: timeout,
				Kind: SetBlocked, Entry: ref, KeyKind: acl.PerSource},
			&Set{Name: full, Key: KeyNFProto, Size: 2, Timeout: timeout,
				Kind: SetBlocked, Entry: ref, KeyKind: acl.Total})
		own := EntryRef{k.fam, k.name, k.dir, 0} // the ACL's log chains for blocked refusals
		verdict, kind := b.blockedRefusal(e)
		refuse := append([]Stmt{&CounterRef{Name: cnt}}, b.loggedBlocked(a, own, kind, verdict)...)
		out = append(out,
			&Rule{Comment: RuleComment(ref, RoleBlocked),
				Stmts: slices.Concat([]Stmt{&CtState{States: CtNew}, &SetLookup{Set: set, Key: key, Dep: true}}, refuse)},
			&Rule{Comment: RuleComment(ref, RoleBlockedFull),
				Stmts: slices.Concat([]Stmt{&CtState{States: CtNew}, &SetLookup{Set: full, Key: Key{Family: k.fam, Kind: acl.Total}}}, refuse)})
	}
	return out
}

// blockedRefusal is how a source locked out by e is refused on its ACL:
// as e refuses over its limits. A dropping entry drops; an entry with a
// refuse message gives the message to TCP connections (the rest go to the
// refuse chain: the lockout holds for every protocol, the message is TCP's);
// any other entry uses the refuse chain. kind names the refusal for the
// chains it needs ("" for the refuse chain).
func (b *builder) blockedRefusal(e *acl.Entry) (verdict []Stmt, kind string) {
	switch {
	case e.Drops():
		return []Stmt{&Verdict{Kind: expr.VerdictDrop}}, "drop"
	case e.Refuse.Kind == acl.RefuseMessage:
		if m, ok := b.message(e.Refuse.Message); ok {
			return b.refuseMessage(m), "message_" + strconv.Itoa(int(m.Port))
		}
	}
	return []Stmt{&Verdict{Kind: expr.VerdictJump, Chain: RefuseChain}}, ""
}

// blockChain returns the block chain of an entry with block-for; refuse is
// the entry's refusal.
func blockChain(k chainKey, ref EntryRef, e *acl.Entry, refuse []Stmt) *Chain {
	last := standalone(e, refuse)
	timeout := time.Duration(e.BlockFor.Seconds) * time.Second
	return &Chain{Name: BlockChainName(ref), Rules: []*Rule{
		{Comment: RuleComment(ref, RoleBlock), Stmts: slices.Concat([]Stmt{&BlockAdd{
			Set: BlockedSetName(ref), Family: k.fam, Timeout: timeout}}, last)},
		{Comment: RuleComment(ref, RoleBlockFull), Stmts: slices.Concat([]Stmt{&BlockAdd{
			Set: BlockedFullSetName(ref), Family: k.fam, Flag: true, Timeout: timeout}}, last)},
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

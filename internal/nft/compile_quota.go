package nft

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// quota: `quota N UNIT per P [per-source | total]` counts the bytes, both
// directions and every packet, of the connections the entry admitted, per
// key and fixed window of P from the key's first connection; a key over
// its quota gets its new connections refused until the window ends, open
// ones go on.
//
//	set ip_check_in_eHASH_quota_src_100k_1m { type ipv4_addr; size N; flags dynamic,timeout; timeout 1m; }
//	chain input/forward/output {
//		... reset-mark
//		ct state established,related ct mark & 0x00ffffff != 0x00000000 jump quota_bytes   before "established"
//		ct state established,related accept
//	}
//	chain quota_bytes {                                             one or two rules per quota
//		ct mark & 0x00ffffff == ID ct direction original add @Q { ip saddr quota over 100 kbytes }
//		ct mark & 0x00ffffff == ID ct direction reply add @Q { ip daddr quota over 100 kbytes }
//	}
//	entry:  MATCH ct state new add @Q { ip saddr quota over 100 kbytes } REFUSE       (role "quota")
//	        MATCH ct state new ip saddr != @Q REFUSE                                 ("quota-full")
//	        MATCH ct mark set ct mark & 0xff000000 | ID return                      (the permit rule)
//
// The window is the element's life: `add` creates it with the set's
// timeout and never renews it, and evaluates its quota on every packet.
// The admitted connection carries the quota's ID in the low 24 bits of its
// ct mark (the agent's flags live in the high byte), so that the base
// chains count its packets, in either direction, into the key's element.
// A total quota's key is `meta nfproto`. The first packet of a connection
// the quota refuses is counted too (it is what the quota test consumes).

// QuotaChain is the chain that counts the packets of admitted connections
// into their quota.
const QuotaChain = "quota_bytes"

// QuotaMarkMask is the part of the ct mark that holds a connection's quota
// ID (0: none).
const QuotaMarkMask = 0x00ffffff

// RoleQuota and RoleQuotaFull are the roles of a quota's rules.
const (
	RoleQuota     = "quota"
	RoleQuotaFull = "quota-full"
)

// QuotaSetName is the dynamic set of entry e's quota:
// "ip_check_in_e0123456789ab_quota_src_100k_1m" (windowBase; key, amount,
// unit and period: what each element keeps from its creation).
func QuotaSetName(r EntryRef, e *acl.Entry) string {
	q := e.Quota
	key := "total"
	if q.PerSource {
		key = "src"
	}
	return shorten(fmt.Sprintf("%s_quota_%s_%d%c_1%c", windowBase(r, e), key, q.N, "bkmg"[q.Unit], "smhd"[q.Per]))
}

// quotaRef is one quota of the ruleset, for the quota chain.
type quotaRef struct {
	set   string
	id    uint32
	key   Key
	bytes uint64
}

// quotaID returns the ct mark ID of a quota set: a hash of its name, so
// that it stays the same across compiles (open connections keep the mark
// they were admitted with), moved on while it collides with another's.
func (b *builder) quotaID(set string) uint32 {
	if id, ok := b.quotaIDs[set]; ok {
		return id
	}
	h := fnv.New32a()
	h.Write([]byte(set))
	id := h.Sum32() & QuotaMarkMask
	for id == 0 || slices.ContainsFunc(b.quotas, func(q quotaRef) bool { return q.id == id }) {
		id = (id + 1) & QuotaMarkMask
	}
	if b.quotaIDs == nil {
		b.quotaIDs = map[string]uint32{}
	}
	b.quotaIDs[set] = id
	return id
}

// quotaCheck compiles an entry's quota and returns its check and the
// statement that marks the connections the entry admits.
func (b *builder) quotaCheck(ref EntryRef, e *acl.Entry, ctx ruleCtx) (check, Stmt) {
	q := e.Quota
	kind := acl.Total
	if q.PerSource {
		kind = acl.PerSource
	}
	key := Key{Family: ref.Family, Kind: kind}
	dep := !ctx.nf && kind != acl.Total
	set := QuotaSetName(ref, e)
	bytes := q.N * q.Unit.Size()
	if _, known := b.quotaIDs[set]; !known {
		id := b.quotaID(set)
		b.quotas = append(b.quotas, quotaRef{set, id, key, bytes})
		b.rs.Sets = append(b.rs.Sets, &Set{Name: set, Key: key.SetKey(), Size: b.opt.SetSize,
			Timeout: acl.PeriodDuration(q.Per), Kind: SetQuota, Entry: ref, KeyKind: kind})
	}
	return check{
		role:   RoleQuota,
		reason: RoleQuota,
		over:   []Stmt{&QuotaAdd{Set: set, Key: key, Bytes: bytes, Dep: dep}},
		full:   []Stmt{&SetLookup{Set: set, Key: key, Invert: true, Dep: dep}},
		blocks: true,
	}, &CtMarkID{Mask: QuotaMarkMask, ID: b.quotaIDs[set]}
}

// quotaChains adds the quota chain and its jumps to the base chains
// input, forward and output (before their "established" rule), when the
// ruleset has quotas.
func (b *builder) quotaChains(chains []*Chain) []*Chain {
	if len(b.quotas) == 0 {
		return chains
	}
	qs := slices.Clone(b.quotas)
	slices.SortFunc(qs, func(x, y quotaRef) int { return cmpString(x.set, y.set) })
	ch := &Chain{Name: QuotaChain}
	for _, q := range qs {
		mark := &CtMarkEq{Mask: QuotaMarkMask, Value: q.id}
		if q.key.Kind == acl.Total {
			ch.Rules = append(ch.Rules, &Rule{Comment: "quota " + q.set,
				Stmts: []Stmt{mark, &QuotaAdd{Set: q.set, Key: q.key, Bytes: q.bytes}}})
			continue
		}
		reply := q.key
		reply.Kind = acl.PerDestination // the client is the reply's destination
		ch.Rules = append(ch.Rules,
			&Rule{Comment: "quota " + q.set + " original",
				Stmts: []Stmt{mark, &CtDirection{}, &QuotaAdd{Set: q.set, Key: q.key, Bytes: q.bytes, Dep: true}}},
			&Rule{Comment: "quota " + q.set + " reply",
				Stmts: []Stmt{mark, &CtDirection{Reply: true}, &QuotaAdd{Set: q.set, Key: reply, Bytes: q.bytes, Dep: true}}})
	}
	for _, c := range chains {
		if c.Hook == nil || (c.Hook.Hook != "input" && c.Hook.Hook != "forward" && c.Hook.Hook != "output") {
			continue
		}
		i := slices.IndexFunc(c.Rules, func(r *Rule) bool { return r.Comment == "established" })
		if i < 0 {
			continue
		}
		// Why established: the first packet was counted by the entry's
		// quota check (in prerouting for `in` ACLs, before it reaches input).
		jump := &Rule{Comment: "quota", Stmts: []Stmt{&CtState{States: CtEstablished | CtRelated},
			&CtMarkEq{Mask: QuotaMarkMask, Value: 0, Neq: true}, &Verdict{Kind: expr.VerdictJump, Chain: QuotaChain}}}
		c.Rules = slices.Insert(c.Rules, i, jump)
	}
	return append(chains, ch)
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// QuotaAdd counts the packet into the key's quota, creating the key's
// element (its window) if needed, and matches when the key is over:
// `add @q { ip saddr quota over 100 kbytes }`. Like ConnlimitAdd, it does
// not match when the set is full.
type QuotaAdd struct {
	Set   string
	Key   Key
	Bytes uint64
	Dep   bool // emit the `meta nfproto` dependency before the key
}

// String renders the statement as nft lists it.
func (s *QuotaAdd) String() string {
	return "add @" + s.Set + " { " + s.Key.String() + " quota over " + quotaAmount(s.Bytes) + " }"
}

// quotaAmount is how nft prints a quota: in the largest unit that divides
// it, up to mbytes (nft 1.0.6 reads no gbytes).
func quotaAmount(n uint64) string {
	units := []string{"bytes", "kbytes", "mbytes"}
	i := 0
	for i < len(units)-1 && n >= 1024 && n%1024 == 0 {
		n /= 1024
		i++
	}
	return strconv.FormatUint(n, 10) + " " + units[i]
}

// Exprs implements Stmt.
func (s *QuotaAdd) Exprs() []expr.Any {
	return append(s.Key.exprs(s.Dep), &expr.Dynset{
		SrcRegKey: 1,
		SetName:   s.Set,
		Operation: unix.NFT_DYNSET_OP_ADD,
		Exprs:     []expr.Any{&expr.Quota{Bytes: s.Bytes, Over: true}},
	})
}

// CtMarkEq compares the masked ct mark: `ct mark & 0x00ffffff == 0x00001234`
// (or != with Neq).
type CtMarkEq struct {
	Mask, Value uint32
	Neq         bool
}

// String renders the statement as nft lists it.
func (s *CtMarkEq) String() string {
	op := "=="
	if s.Neq {
		op = "!="
	}
	return fmt.Sprintf("ct mark & 0x%08x %s 0x%08x", s.Mask, op, s.Value)
}

// Exprs implements Stmt: the mark is host-endian.
func (s *CtMarkEq) Exprs() []expr.Any {
	op := expr.CmpOpEq
	if s.Neq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(s.Mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: op, Register: 1, Data: binaryutil.NativeEndian.PutUint32(s.Value)},
	}
}

// CtMarkID sets the masked part of the ct mark to ID, keeping the rest:
// `ct mark set ct mark & 0xff001234 | 0x00001234`, which is how nft 1.0.6
// lists the mask ~Mask with the value ID; a single bit (Mask == ID, as
// conntrack.AdoptMark) lists as `ct mark set ct mark | 0x10000000`.
type CtMarkID struct{ Mask, ID uint32 }

// String renders the statement as nft lists it.
func (s *CtMarkID) String() string {
	if keep := ^s.Mask | s.ID; keep != 0xffffffff {
		return fmt.Sprintf("ct mark set ct mark & 0x%08x | 0x%08x", keep, s.ID)
	}
	return fmt.Sprintf("ct mark set ct mark | 0x%08x", s.ID)
}

// Exprs implements Stmt.
func (s *CtMarkID) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(^s.Mask), Xor: binaryutil.NativeEndian.PutUint32(s.ID)},
		&expr.Ct{Register: 1, Key: expr.CtKeyMARK, SourceRegister: true},
	}
}

// CtDirection matches the direction of the packet in its connection:
// `ct direction original` or `ct direction reply`.
type CtDirection struct{ Reply bool }

// String renders the statement as nft lists it.
func (s *CtDirection) String() string {
	if s.Reply {
		return "ct direction reply"
	}
	return "ct direction original"
}

// Exprs implements Stmt.
func (s *CtDirection) Exprs() []expr.Any {
	d := byte(0)
	if s.Reply {
		d = 1
	}
	return []expr.Any{&expr.Ct{Register: 1, Key: expr.CtKeyDIRECTION}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{d}}}
}

package nft_test

import (
	"encoding/binary"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// raw is a hand-written statement for tests that do not go through Compile.
// Its text must tell apart what its expressions do: Applier.InSync trusts
// Ruleset.String() to identify a ruleset.
type raw struct {
	text  string
	exprs []expr.Any
}

func (r raw) String() string    { return r.text }
func (r raw) Exprs() []expr.Any { return r.exprs }

func rule(comment string, stmts ...nft.Stmt) *nft.Rule {
	return &nft.Rule{Comment: comment, Stmts: stmts}
}

func ctState(bits uint32, verdict expr.VerdictKind) []nft.Stmt {
	return []nft.Stmt{
		raw{fmt.Sprintf("ct state %#x", bits), []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(bits), Xor: le32(0)},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
		}},
		verdict1(verdict),
	}
}

func verdict1(k expr.VerdictKind) nft.Stmt {
	return raw{fmt.Sprintf("verdict %d", k), []expr.Any{&expr.Verdict{Kind: k}}}
}

func jump(chain string) nft.Stmt {
	return raw{"jump " + chain, []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: chain}}}
}

func iifname(name string) nft.Stmt {
	b := make([]byte, 16)
	copy(b, name)
	return raw{"iifname " + name, []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b},
	}}
}

func tcpDport(p uint16) nft.Stmt {
	return raw{fmt.Sprintf("tcp dport %d", p), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p)},
	}}
}

func ctNew() nft.Stmt {
	return raw{"ct state new", []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: le32(expr.CtStateBitNEW), Xor: le32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: le32(0)},
	}}
}

// countOver is `add @set { ip saddr ct count over n }`.
func countOver(set string, n uint32) nft.Stmt {
	return raw{fmt.Sprintf("add @%s { ip saddr ct count over %d }", set, n), []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Dynset{SrcRegKey: 1, SetName: set, Operation: uint32(unix.NFT_DYNSET_OP_ADD),
			Exprs: []expr.Any{&expr.Connlimit{Count: n, Flags: 1}}},
	}}
}

func counter(name string) nft.Stmt {
	return raw{"counter name " + name, []expr.Any{&expr.Objref{Type: 1, Name: name}}}
}

func reset() nft.Stmt {
	return raw{"reject with tcp reset", []expr.Any{&expr.Reject{Type: unix.NFT_REJECT_TCP_RST}}}
}

func le32(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
func be16(v uint16) []byte { b := make([]byte, 2); binary.BigEndian.PutUint16(b, v); return b }

// slxRuleset is a hand-built ruleset: connections to port 22 arriving on s0
// are limited to n per source, other traffic on s0 is dropped, and extra
// rules are appended to the ACL chain before the final drop.
func slxRuleset(n uint32, extra ...*nft.Rule) *nft.Ruleset {
	acl := &nft.Chain{Name: "acl_in"}
	acl.Rules = append(acl.Rules,
		rule("acl=check seq=10 refuse", tcpDport(22), ctNew(), countOver("s_check_10", n), counter("check_10_refused"), reset()),
		rule("acl=check seq=10", tcpDport(22), counter("check_10_matched"), verdict1(expr.VerdictAccept)))
	acl.Rules = append(acl.Rules, extra...)
	acl.Rules = append(acl.Rules, rule("acl=check implicit-deny", verdict1(expr.VerdictDrop)))
	return &nft.Ruleset{
		Table:    "slxsh",
		Counters: []string{"check_10_matched", "check_10_refused"},
		Sets:     []*nft.Set{{Name: "s_check_10", Key: nft.KeyIPv4, Size: 65535}},
		Chains: []*nft.Chain{
			{Name: "input", Hook: &nft.Hook{Hook: "input", Priority: 0}, Rules: []*nft.Rule{
				rule("established", ctState(expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED, expr.VerdictAccept)...),
				rule("if=s0 in", iifname("s0"), jump("acl_in")),
			}},
			acl,
		},
	}
}

// applier returns an Applier working in ns.
func applier(ns *netns.NS) *nft.Applier {
	return nft.NewApplier("slxsh", nftables.WithNetNSFd(ns.Fd()))
}

func mustApply(t *testing.T, a *nft.Applier, rs *nft.Ruleset) {
	t.Helper()
	if err := a.Apply(rs); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if d, err := a.CheckKnowledge(); d != "" || err != nil {
		t.Fatalf("after apply, the Applier knows the table wrong: %s %v", d, err)
	}
	openGates(t, a, rs)
	if ok, err := a.InSync(rs); err != nil || !ok {
		d, _ := a.Drift(rs)
		t.Fatalf("after apply: InSync = %v, %v (%s)", ok, err, d)
	}
}

// openGates opens the gates of the limit sets that an Apply created, as
// the agent does once it has counted the sessions open before (none in
// these tests).
func openGates(t *testing.T, a *nft.Applier, rs *nft.Ruleset) {
	t.Helper()
	if err := a.WriteReservations(nil, nil, nft.LimitSets(rs)); err != nil {
		t.Fatalf("open gates: %v", err)
	}
}

var handleRE = regexp.MustCompile(` # handle \d+`)

// expiresRE is the time an element with a timeout has left (the grace
// set's), which differs between two listings.
var expiresRE = regexp.MustCompile(` expires [0-9dhms]+`)

// listTable is `nft list table inet NAME` in ns with handles and element
// expiry times removed.
func listTable(t *testing.T, ns *netns.NS, name string) string {
	t.Helper()
	out := ns.MustExec(t, "nft", "-a", "list", "table", "inet", name)
	return strings.TrimSpace(expiresRE.ReplaceAllString(handleRE.ReplaceAllString(out, ""), ""))
}

// listTableStateless is listTable with counter values and set elements
// left out.
func listTableStateless(t *testing.T, ns *netns.NS, name string) string {
	t.Helper()
	out := ns.MustExec(t, "nft", "-s", "list", "table", "inet", name)
	return strings.TrimSpace(out)
}

// nftSized removes from an `nft list` of rs's table the size that the
// kernel gives a set that rs declares without one: once a rule adds to it
// (a dynset: connlimit, layer counts, rate, quota, block-for), the set
// lists as `size 65535` (nft.UnsizedSetCap, its cap), though it was
// created unsized (it grows on demand, about 1 KiB while empty).
func nftSized(rs *nft.Ruleset, listed string) string {
	listed = expiresRE.ReplaceAllString(listed, "")
	for _, s := range rs.Sets {
		if s.Size == 0 {
			head := "\tset " + s.Name + " {\n\t\ttype " + s.Key.TypeName() + "\n"
			listed = strings.Replace(listed, head+"\t\tsize 65535\n", head, 1)
		}
	}
	return listed
}

package nft_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// openN opens n connections that must all succeed.
func openN(t *testing.T, c *netns.NS, local, remote string, n int) []net.Conn {
	t.Helper()
	var conns []net.Conn
	for range n {
		conns = append(conns, c.Expect(t, local, remote, netns.Connected))
	}
	return conns
}

func counters(t *testing.T, a *nft.Applier) map[string]nft.CounterValue {
	t.Helper()
	m, err := a.Counters()
	if err != nil {
		t.Fatalf("counters: %v", err)
	}
	return m
}

func TestKernelApplyHandBuiltKeepsCounts(t *testing.T) {
	p := netns.NewPair(t)
	srv := p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, "22"))
	a := applier(p.Server)
	mustApply(t, a, slxRuleset(3))

	openN(t, p.Client, "", srv.Addr, 3)
	p.Client.Expect(t, "", srv.Addr, netns.Reset)
	before := counters(t, a)
	if before["check_10_matched"].Packets != 3 || before["check_10_refused"].Packets != 1 {
		t.Fatalf("counters after 3+1 connections: %+v", before)
	}

	// (a) another entry changed: the count in the set survives.
	other := rule("acl=check seq=20", tcpDport(80), verdict1(expr.VerdictAccept))
	mustApply(t, a, slxRuleset(3, other))
	p.Client.Expect(t, "", srv.Addr, netns.Reset)
	// (b) the same ruleset re-applied, by a new Applier (an agent restart).
	b := applier(p.Server)
	mustApply(t, b, slxRuleset(3, other))
	p.Client.Expect(t, "", srv.Addr, netns.Reset)

	after := counters(t, b)
	if after["check_10_matched"].Packets != 3 || after["check_10_refused"].Packets != 3 {
		t.Errorf("counters after two more refusals: %+v, want matched 3, refused 3", after)
	}
	if !strings.Contains(listTable(t, p.Server, "slxsh"), `comment "acl=check seq=20"`) {
		t.Errorf("changed rule missing:\n%s", listTable(t, p.Server, "slxsh"))
	}
}

func TestKernelApplyRemovesStale(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	rs := slxRuleset(3)
	rs.Sets = append(rs.Sets, &nft.Set{Name: "s_old", Key: nft.KeyIPv6, Size: 100})
	rs.Counters = append(rs.Counters, "old_counter")
	rs.Chains = append(rs.Chains, &nft.Chain{Name: "acl_old", Rules: []*nft.Rule{
		rule("acl=old seq=10", counter("old_counter"), jump("acl_in")),
	}})
	rs.Chains[0].Rules = append(rs.Chains[0].Rules, rule("if=s1 in", iifname("s1"), jump("acl_old")))
	mustApply(t, a, rs)
	for _, want := range []string{"s_old", "old_counter", "acl_old"} {
		if !strings.Contains(listTable(t, n, "slxsh"), want) {
			t.Fatalf("%s missing after first apply", want)
		}
	}
	mustApply(t, a, slxRuleset(3))
	got := listTable(t, n, "slxsh")
	for _, gone := range []string{"s_old", "old_counter", "acl_old", "s1"} {
		if strings.Contains(got, gone) {
			t.Errorf("stale %s still in table:\n%s", gone, got)
		}
	}
}

func TestKernelApplyRefusedKeepsOldRules(t *testing.T) {
	p := netns.NewPair(t)
	srv := p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, "22"))
	a := applier(p.Server)
	mustApply(t, a, slxRuleset(2))
	openN(t, p.Client, "", srv.Addr, 2)
	before := listTable(t, p.Server, "slxsh")

	bad := slxRuleset(5, rule("acl=check seq=20", jump("no_such_chain")))
	err := a.Apply(bad)
	if !errors.Is(err, nft.ErrRefused) {
		t.Fatalf("apply with a jump to a missing chain: %v, want ErrRefused", err)
	}
	// The error names the message the kernel refused.
	if want := "add rule to chain acl_in: no such file or directory"; !strings.Contains(err.Error(), want) {
		t.Errorf("apply with a jump to a missing chain: %v, want it to say %q", err, want)
	}
	if after := listTable(t, p.Server, "slxsh"); after != before {
		t.Errorf("refused transaction changed the table:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// Still the old limit of 2, not 5.
	p.Client.Expect(t, "", srv.Addr, netns.Reset)
	if ok, _ := a.InSync(slxRuleset(2)); !ok {
		t.Error("table not in sync with the old ruleset after a refused apply")
	}
}

func TestKernelDriftRepair(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	rs := slxRuleset(3)
	mustApply(t, a, rs)
	want := listTable(t, n, "slxsh")
	for _, tamper := range []string{
		"delete table inet slxsh",
		"flush chain inet slxsh acl_in",
		"add rule inet slxsh acl_in accept",
		"insert rule inet slxsh input accept",
		"delete chain inet slxsh acl_in; add chain inet slxsh acl_in",
		"add chain inet slxsh extra",
		"add counter inet slxsh extra",
	} {
		// The chain and set delete needs the referencing rules gone.
		n.MustExec(t, "nft", strings.ReplaceAll(tamper, "delete chain inet slxsh acl_in", "flush chain inet slxsh input; flush chain inet slxsh acl_in; delete chain inet slxsh acl_in"))
		if ok, err := a.InSync(rs); err != nil || ok {
			t.Errorf("after %q: InSync = %v, %v; want false", tamper, ok, err)
		}
		mustApply(t, a, rs)
		if got := listTable(t, n, "slxsh"); got != want {
			t.Errorf("after %q and repair:\n%s\nwant:\n%s", tamper, got, want)
		}
	}
	// A rule changed in place (same comment, other port) is drift too.
	changed := slxRuleset(3)
	changed.Chains[1].Rules[1] = rule("acl=check seq=10", tcpDport(23), counter("check_10_matched"), verdict1(expr.VerdictAccept))
	mustApply(t, a, changed)
	if ok, _ := a.InSync(rs); ok {
		t.Error("InSync true for a rule with another port")
	}
}

func TestKernelApplyLeavesOtherTables(t *testing.T) {
	n := netns.New(t)
	n.MustExec(t, "nft", `add table inet other; add chain inet other c { type filter hook input priority 10; }; add set inet other s { type ipv4_addr; }; add counter inet other k; add rule inet other c counter accept comment "mine"`)
	n.MustExec(t, "nft", `add table ip slxsh; add chain ip slxsh c`) // same name, other family
	before := n.MustExec(t, "nft", "list", "ruleset")
	a := applier(n)
	mustApply(t, a, slxRuleset(3))
	mustApply(t, a, slxRuleset(4))
	mustApply(t, a, &nft.Ruleset{Table: "slxsh"})
	n.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	if after := n.MustExec(t, "nft", "list", "ruleset"); after != before {
		t.Errorf("other tables changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestKernelCountersMissingTable(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	m, err := a.Counters()
	if err != nil || len(m) != 0 {
		t.Errorf("counters of a missing table: %v, %v", m, err)
	}
	if ok, err := a.InSync(slxRuleset(3)); err != nil || ok {
		t.Errorf("InSync of a missing table: %v, %v", ok, err)
	}
}

func TestKernelApplyRecreatesChangedSetAndChain(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	mustApply(t, a, slxRuleset(3))
	// The same names with other properties: a set size and a base chain
	// priority cannot change in place.
	rs := slxRuleset(3)
	rs.Sets[0].Size = 100
	rs.Chains[0].Hook.Priority = 10
	mustApply(t, a, rs)
	got := listTable(t, n, "slxsh")
	for _, want := range []string{"size 100", "hook input priority filter + 10"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q after the change:\n%s", want, got)
		}
	}
	// A regular chain that becomes a base chain.
	rs2 := slxRuleset(3)
	rs2.Chains[1].Hook = &nft.Hook{Hook: "forward", Priority: 0}
	rs2.Chains[0].Rules = rs2.Chains[0].Rules[:1] // no jump to a base chain
	mustApply(t, a, rs2)
	if got := listTable(t, n, "slxsh"); !strings.Contains(got, "chain acl_in {\n\t\ttype filter hook forward") {
		t.Errorf("acl_in did not become a base chain:\n%s", got)
	}
}

func TestKernelApplyRejectsUnknownHook(t *testing.T) {
	n := netns.New(t)
	rs := slxRuleset(3)
	rs.Chains[0].Hook.Hook = "ingress"
	if err := applier(n).Apply(rs); err == nil || errors.Is(err, nft.ErrRefused) {
		t.Errorf("unknown hook: %v, want a validation error", err)
	}
	if out := n.MustExec(t, "nft", "list", "ruleset"); out != "" {
		t.Errorf("validation error left a ruleset:\n%s", out)
	}
}

// TestKernelApplyRemovesForeignObjects: whatever someone else adds to our
// table (sets and maps of other types, other stateful objects) is stale,
// removed by the next Apply, and seen as drift before that.
func TestKernelApplyRemovesForeignObjects(t *testing.T) {
	for _, foreign := range []string{
		`add set inet slxsh x { type ipv4_addr . inet_service; }`,
		`add map inet slxsh m { type ipv4_addr : verdict; }`,
		`add set inet slxsh iv { type ipv4_addr; flags interval; elements = { 10.0.0.0/8 } }`,
		`add set inet slxsh tf { typeof tcp flags; }`,
		`add quota inet slxsh q { over 10 mbytes }`,
		`add limit inet slxsh l { rate 10/second }`,
		`add ct helper inet slxsh h { type "ftp" protocol tcp; }`,
		`add ct timeout inet slxsh ctt { protocol tcp; policy = { established: 100 }; }`,
		`add synproxy inet slxsh sp { mss 1460; wscale 7; }`,
	} {
		t.Run(foreign, func(t *testing.T) {
			n := netns.New(t)
			a := applier(n)
			rs := slxRuleset(3)
			mustApply(t, a, rs)
			want := listTable(t, n, "slxsh")
			n.MustExec(t, "nft", foreign)
			if ok, err := a.InSync(rs); ok || err != nil {
				t.Errorf("InSync after %q: %v, %v; want false", foreign, ok, err)
			}
			mustApply(t, a, rs)
			if got := listTable(t, n, "slxsh"); got != want {
				t.Errorf("after %q and Apply:\n%s\nwant:\n%s", foreign, got, want)
			}
		})
	}
}

func TestKernelApplyReplacesObjectOfOtherType(t *testing.T) {
	n := netns.New(t)
	n.MustExec(t, "nft", "add table inet slxsh; add quota inet slxsh check_10_matched { over 1 mbytes }")
	mustApply(t, applier(n), slxRuleset(3))
	if got := listTable(t, n, "slxsh"); strings.Contains(got, "quota") || !strings.Contains(got, "counter check_10_matched") {
		t.Errorf("quota with a counter's name not replaced:\n%s", got)
	}
}

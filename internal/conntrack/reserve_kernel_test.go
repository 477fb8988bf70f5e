package conntrack

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// limitedConfig is `seq 10 permit tcp any host 10.0.0.2 eq 22 connlimit
// 3`, `seq 20 permit ip any any` on the server's s0, and unlimitedConfig
// `permit ip any any` alone: compiled and applied by the product's own
// Compile and Applier.
const (
	limitedConfig = `ip access-list extended check
 seq 10 permit tcp any host 10.0.0.2 eq 22 connlimit 3
 seq 20 permit ip any any
interface s0
 ip access-group check in
`
	unlimitedConfig = `ip access-list extended check
 seq 20 permit ip any any
interface s0
 ip access-group check in
`
)

// applyConfig compiles text and applies it in n through an nft.Applier,
// which it returns with the ruleset.
func applyConfig(t *testing.T, n *netns.NS, text string) (*nft.Applier, *nft.Ruleset) {
	t.Helper()
	cfg, err := cli.ParseConfig(text)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := nft.Compile(cfg, nft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := nft.NewApplier("slxsh", nftables.WithNetNSFd(n.Fd()))
	if err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	return a, rs
}

var limitedBindings = []Binding{{ACL: &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
	{Seq: 10, Action: acl.Permit, Proto: 6, Dst: host("10.0.0.2"), DstPort: eq(22), Connlimits: limits(3, acl.PerSource, 0)},
	{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
}}, Dir: acl.In}}

// waitOpen waits (bounded) until the namespace's marked open flows number want.
func waitOpen(t *testing.T, k *Kernel, want int) []Flow {
	t.Helper()
	var open []Flow
	for range 50 {
		fs, err := k.DumpMarked(OldMark)
		if err != nil {
			t.Fatal(err)
		}
		open = open[:0]
		for _, f := range fs {
			if f.Open() {
				open = append(open, f)
			}
		}
		if len(open) == want {
			return open
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d old sessions still open, want %d", len(open), want)
	return nil
}

func TestKernelExistingSessionsCounted(t *testing.T) {
	p := netns.NewPair(t)
	applyConfig(t, p.Server, unlimitedConfig)
	p.Server.Listen(t, "10.0.0.2:22")
	old := dial(t, p.Client, "10.0.0.2:22", 3)

	// The limit arrives with its gate closed; then the recount.
	r, rs := applyConfig(t, p.Server, limitedConfig)
	limited := LimitSets(rs)
	if len(limited) != 1 {
		t.Fatalf("want one limit set, got %d", len(limited))
	}
	limitedSet := limited[0]
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset) // the gate is closed
	if g, err := r.Gated(kernelSets(limited)); err != nil || len(g) != 1 {
		t.Fatalf("Gated = %v, %v; want the new limit set", g, err)
	}
	k := openKernel(t, p.Server)
	flows, err := k.Dump()
	if err != nil {
		t.Fatal(err)
	}
	a := Attribute(limitedBindings, flows, nil)
	plan := Plan(limited, a)
	if want := []Reservation{{Set: limitedSet.Name, Key: "10.0.0.1", Depth: 3}}; !equalRes(plan, want) {
		t.Fatalf("Plan = %v, want %v", plan, want)
	}
	if err := MarkOld(k, OldFlows(limited, a)); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteReservations(kernelSets(limited), plan, kernelSets(limited)); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Reservations(kernelSets(limited)); !equalRes(got, plan) {
		t.Fatalf("Reservations = %v, want %v", got, plan)
	}

	// The 4th is refused at once, and stays refused.
	for range 3 {
		p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset)
	}
	// Other sources have their full budget.
	p.Client.MustExec(t, "ip", "addr", "add", "10.0.0.7/24", "dev", "c0")
	for range 3 {
		p.Client.Expect(t, "10.0.0.7", "10.0.0.2:22", netns.Connected)
	}
	p.Client.Expect(t, "10.0.0.7", "10.0.0.2:22", netns.Reset)

	// One old session ends: after a refresh exactly one more is admitted.
	old[0].Close()
	marked := waitOpen(t, k, 2)
	now := Plan(limited, Attribute(limitedBindings, marked, nil))
	next := Shrink(plan, now)
	if want := []Reservation{{Set: limitedSet.Name, Key: "10.0.0.1", Depth: 2}}; !equalRes(next, want) {
		t.Fatalf("Shrink = %v, want %v", next, want)
	}
	if err := r.WriteReservations(kernelSets(limited), next, nil); err != nil {
		t.Fatal(err)
	}
	p.Client.Expect(t, "10.0.0.1", "10.0.0.2:22", netns.Connected)
	p.Client.Expect(t, "10.0.0.1", "10.0.0.2:22", netns.Reset)

	// The sessions view agrees with the real sessions: 3 per source.
	flows, err = k.Dump()
	if err != nil {
		t.Fatal(err)
	}
	counts := Attribute(limitedBindings, flows, nil).Counts()
	if len(counts) != 2 || counts[0].Sessions != 3 || counts[1].Sessions != 3 || !counts[0].AtLimit {
		t.Errorf("Counts = %+v, want 10.0.0.1 and 10.0.0.7 with 3 sessions at the limit", counts)
	}
}

func equalRes(a, b []Reservation) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestKernelPrecreatedElementIsCollected records why reservations are not
// hand-made elements with a reduced limit: the kernel removes an element
// whose count is 0, and the next connection gets the rule's full budget.
// If this ever fails, the kernel keeps such elements and the simpler design
// becomes possible.
func TestKernelPrecreatedElementIsCollected(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, `table inet t {
	set s { type ipv4_addr; size 65535; flags dynamic; }
	chain input { type filter hook input priority 0; policy accept;
		ct state established,related accept
		tcp dport 22 add @s { ip saddr ct count over 3 } reject with tcp reset
	}
}`)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.MustExec(t, "nft", "add", "element", "inet", "t", "s", "{ 10.0.0.1 ct count over 0 }")
	gone := false
	for range 100 {
		out := p.Server.MustExec(t, "nft", "list", "set", "inet", "t", "s")
		if !strings.Contains(out, "10.0.0.1") {
			gone = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !gone {
		t.Fatal("the hand-made element with count 0 was kept for 10 s")
	}
	var conns []net.Conn
	for range 3 {
		conns = append(conns, p.Client.Expect(t, "", "10.0.0.2:22", netns.Connected))
	}
	_ = conns
}

// TestKernelReserverAtScale writes, reads back and shrinks reservations for
// 20,000 IPv6 keys (more than one netlink attribute can carry).
func TestKernelReserverAtScale(t *testing.T) {
	n := netns.NewPair(t).Server
	r, rs := applyConfig(t, n, `ipv6 access-list extended x
 seq 10 permit tcp any any eq 22 connlimit 5
interface s0
 ipv6 access-group x in
`)
	ks := kernelSets(LimitSets(rs))
	var want []Reservation
	for i := range 20000 {
		a := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
		want = append(want, Reservation{Set: ks[0].Name, Key: a.String(), Depth: []int{1, 2, 4, 5}[i%4]})
	}
	slices.SortFunc(want, compareRes)
	if err := r.WriteReservations(ks, want, ks); err != nil {
		t.Fatal(err)
	}
	got, err := r.Reservations(ks)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(got, compareRes)
	if !equalRes(got, want) {
		t.Fatalf("read back %d reservations, want %d equal ones", len(got), len(want))
	}
	if gated, err := r.Gated(ks); err != nil || len(gated) != 0 {
		t.Errorf("Gated = %v, %v; want the gate open", gated, err)
	}
	shrunk := Shrink(want, nil)
	if err := r.WriteReservations(ks, shrunk, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Reservations(ks); err != nil || len(got) != 0 {
		t.Errorf("after releasing all: %d reservations, %v", len(got), err)
	}
}

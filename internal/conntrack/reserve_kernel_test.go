package conntrack

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/conntrack/layers"
	"github.com/slxsh/slxsh/internal/netns"
)

// The ruleset of `seq 10 permit tcp any host 10.0.0.2 eq 22 connlimit 3`,
// `seq 20 permit ip any any`, written by hand the way the compiler is to
// write it with reservation layers (see reserve.go), inline in the input
// chain.
const limitedRules = `flush chain inet slxsh input
table inet slxsh {
	set S { type ipv4_addr; size 65535; flags dynamic; }
	set S_g { type nf_proto; size 2; flags dynamic; }
	set S_rf { type ipv4_addr; size 65535; flags dynamic; }
	set S_r1 { type ipv4_addr; size 65535; flags dynamic; }
	set S_l1 { type ipv4_addr; size 65535; flags dynamic; }
	set S_r2 { type ipv4_addr; size 65535; flags dynamic; }
	set S_l2 { type ipv4_addr; size 65535; flags dynamic; }
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related accept
		ip daddr 10.0.0.2 tcp dport 22 meta nfproto @S_g reject with tcp reset
		ip daddr 10.0.0.2 tcp dport 22 ip saddr @S_rf reject with tcp reset
		ip daddr 10.0.0.2 tcp dport 22 ip saddr @S_r1 add @S_l1 { ip saddr ct count over 2 } reject with tcp reset
		ip daddr 10.0.0.2 tcp dport 22 ip saddr @S_r2 add @S_l2 { ip saddr ct count over 1 } reject with tcp reset
		ip daddr 10.0.0.2 tcp dport 22 add @S { ip saddr ct count over 3 } reject with tcp reset
		accept
	}
}`

// unlimitedRules is `permit ip any any` alone.
const unlimitedRules = `table inet slxsh {
	chain input {
		type filter hook input priority 0; policy accept;
		ct state established,related accept
		accept
	}
}`

var limitedBindings = []Binding{{ACL: &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
	{Seq: 10, Action: acl.Permit, Proto: 6, Dst: host("10.0.0.2"), DstPort: eq(22), Connlimit: limit(3, acl.PerSource, 0)},
	{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny},
}}, Dir: acl.In}}

var limitedSet = LimitSet{Name: "S", Entry: EntryID{ACL: "check", Dir: acl.In, Seq: 10},
	Key: acl.PerSource, Over: 3, Size: 65535}

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
	nftLoad(t, p.Server, unlimitedRules)
	p.Server.Listen(t, "10.0.0.2:22")
	old := dial(t, p.Client, "10.0.0.2:22", 3)

	// The limit arrives: gate first, then the ruleset, then the recount.
	r := NewReserver("slxsh", p.Server.Fd())
	if err := r.Gate([]LimitSet{limitedSet}); err != nil {
		t.Fatal(err)
	}
	nftLoad(t, p.Server, limitedRules)
	p.Client.Expect(t, "", "10.0.0.2:22", netns.Reset) // the gate is closed
	k := openKernel(t, p.Server)
	flows, err := k.Dump()
	if err != nil {
		t.Fatal(err)
	}
	a := Attribute(limitedBindings, flows, nil)
	plan := Plan([]LimitSet{limitedSet}, a)
	if want := []Reservation{{Set: "S", Key: "10.0.0.1", Depth: 3}}; !equalRes(plan, want) {
		t.Fatalf("Plan = %v, want %v", plan, want)
	}
	if err := MarkOld(k, OldFlows([]LimitSet{limitedSet}, a)); err != nil {
		t.Fatal(err)
	}
	if err := r.Write([]LimitSet{limitedSet}, plan); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Read([]LimitSet{limitedSet}); !equalRes(got, plan) {
		t.Fatalf("Read = %v, want %v", got, plan)
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
	now := Plan([]LimitSet{limitedSet}, Attribute(limitedBindings, marked, nil))
	next := Shrink(plan, now)
	if want := []Reservation{{Set: "S", Key: "10.0.0.1", Depth: 2}}; !equalRes(next, want) {
		t.Fatalf("Shrink = %v, want %v", next, want)
	}
	if err := r.Write([]LimitSet{limitedSet}, next); err != nil {
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
// 20,000 IPv6 keys (more than one netlink attribute can carry) in a table
// without rules.
func TestKernelReserverAtScale(t *testing.T) {
	n := netns.New(t)
	s := LimitSet{Name: "big", Entry: EntryID{ACL: "x", Family: acl.IPv6, Seq: 10},
		Key: acl.PerSource, Over: 5, Size: 65535}
	r := NewReserver("slxsh", n.Fd())
	if err := r.Gate([]LimitSet{s}); err != nil {
		t.Fatal(err)
	}
	// The compiler declares the other reservation sets.
	decl := "table inet slxsh {\n"
	for _, ls := range layers.Sets("big", 5)[1:] {
		decl += "set " + ls.Name + " { type ipv6_addr; size 65535; flags dynamic; }\n"
	}
	nftLoad(t, n, decl+"}")
	var want []Reservation
	for i := range 20000 {
		a := netip.AddrFrom16([16]byte{0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
		want = append(want, Reservation{Set: "big", Key: a.String(), Depth: []int{1, 2, 4, 5}[i%4]})
	}
	slices.SortFunc(want, compareRes)
	if err := r.Write([]LimitSet{s}, want); err != nil {
		t.Fatal(err)
	}
	got, err := r.Read([]LimitSet{s})
	if err != nil {
		t.Fatal(err)
	}
	if !equalRes(got, want) {
		t.Fatalf("read back %d reservations, want %d equal ones", len(got), len(want))
	}
	if gated, err := r.Gated([]LimitSet{s}); err != nil || len(gated) != 0 {
		t.Errorf("Gated = %v, %v; want the gate open", gated, err)
	}
	shrunk := Shrink(want, nil)
	if err := r.Write([]LimitSet{s}, shrunk); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Read([]LimitSet{s}); err != nil || len(got) != 0 {
		t.Errorf("after releasing all: %d reservations, %v", len(got), err)
	}
}

package conntrack

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
)

// indexBindings count IPv4 sessions to :22 per source, IPv6 ones per /64,
// and mark every IPv4 flow old-able through a second limit on :80.
func indexBindings() []Binding {
	return []Binding{
		{ACL: &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
			{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(3, acl.PerSource, 0)},
			{Seq: 20, Action: acl.Deny, Proto: 6, DstPort: eq(80), Connlimits: limits(2, acl.Total, 0)},
			{Seq: 30, Action: acl.Permit, Proto: acl.ProtoAny}}}, Dir: acl.In},
		{ACL: &acl.ACL{Name: "six", Family: acl.IPv6, Entries: []*acl.Entry{
			{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerPrefix, 64)}}}, Dir: acl.In},
	}
}

// openIndex opens the index of n (without a locator), closed at the end
// of the test; events must work there (the tests are about them).
func openIndex(t *testing.T, n *netns.NS) *Index {
	t.Helper()
	x, err := NewIndex(n.Fd(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return x
}

// indexAgrees fails unless the index's counts are what a dump attributes
// now (the issue-5 path), old sessions included. With refresh the index
// is first brought up to date as the refresh loop does (which dumps again
// while silent flows are left); without, only events and reads keep it.
func indexAgrees(t *testing.T, x *Index, k *Kernel, bs []Binding, refresh bool, step string) {
	t.Helper()
	var diff string
	for range 10 { // the kernel moves closed flows to TIME_WAIT on its own
		if refresh {
			if err := x.Update(bs); err != nil {
				t.Fatal(err)
			}
		}
		got, err := x.Counts(bs, func(KeyID) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		sortCounts(got)
		flows, err := k.Dump()
		if err != nil {
			t.Fatal(err)
		}
		want := Attribute(bs, flows, nil).Counts()
		if diff = cmp.Diff(want, got); diff == "" {
			return
		}
		time.Sleep(30 * time.Millisecond) // 10 tries stay below silentEvery
	}
	t.Errorf("%s: index differs from a dump (-dump +index):\n%s", step, diff)
}

// TestKernelIndexMatchesDump follows a real table through the index: flows
// open before it listened (silent: the kernel sends no events for them),
// flows opened after (followed by events), old marks set, sessions ended
// of both kinds, IPv4 and IPv6; at each step the counts equal those of a
// dump.
func TestKernelIndexMatchesDump(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.Listen(t, "10.0.0.2:80")
	p.Server.Listen(t, "[fd00::2]:22")
	before := dialSilent(t, p.Client, p.Server, "10.0.0.2:22", 3)
	before6 := dialSilent(t, p.Client, p.Server, "[fd00::2]:22", 2)
	k := openKernel(t, p.Server)
	bs := indexBindings()

	x := openIndex(t, p.Server)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go x.Follow(ctx)
	indexAgrees(t, x, k, bs, false, "flows open before the index (the first read dumps)")
	if x.Len() < 5 {
		t.Fatalf("index holds %d flows, want at least the 5 open", x.Len())
	}

	after := dial(t, p.Client, "10.0.0.2:80", 2)
	after = append(after, dial(t, p.Client, "10.0.0.2:22", 1)...)
	indexAgrees(t, x, k, bs, false, "flows opened after the index (events)")

	if err := MarkOld(k, flowsFrom(t, k, after[:1])); err != nil {
		t.Fatal(err)
	}
	indexAgrees(t, x, k, bs, false, "old mark of a followed flow (an update event)")
	if err := MarkOld(k, flowsFrom(t, k, []net.Conn{before[0], before6[0]})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(silentEvery) // a silent flow's mark shows at the next dump
	indexAgrees(t, x, k, bs, true, "old marks (update events; the silent flows' by a dump)")

	for _, c := range []net.Conn{after[0], after[2]} {
		c.Close()
	}
	indexAgrees(t, x, k, bs, false, "sessions followed by events ended")
	// A followed entry deleted from the table: a destroy event.
	f := flowsFrom(t, k, after[1:2])[0]
	p.Server.MustExec(t, "conntrack", "-D", "-p", "tcp", "-s", f.Src.String(), "-d", f.Dst.String(),
		"--sport", strconv.Itoa(int(f.SrcPort)), "--dport", strconv.Itoa(int(f.DstPort)))
	indexAgrees(t, x, k, bs, false, "a followed entry deleted (destroy event)")

	before[1].Close()
	before6[1].Close()
	time.Sleep(silentEvery) // the refresh loop's pace for silent flows
	indexAgrees(t, x, k, bs, true, "silent sessions ended")

	// New bindings: the same records, attributed again without a dump.
	two := indexBindings()[:1]
	indexAgrees(t, x, k, two, false, "other bindings")
	// Bindings that change when the silent flows are dumped again: the
	// records the dump updates in place are attributed anew too.
	time.Sleep(silentEvery)
	indexAgrees(t, x, k, bs, true, "other bindings at a dump")
}

// TestKernelIndexIdleWithoutLimits: while no binding has a limit the
// index holds nothing, dumps nothing and is sent no events (the kernel
// builds none for it as connections come and go); a limit wakes it, and
// its counts are then those of a dump, for sessions opened while it was
// idle and after.
func TestKernelIndexIdleWithoutLimits(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	k := openKernel(t, p.Server)
	x := openIndex(t, p.Server)
	queued := func() int {
		x.mu.Lock()
		defer x.mu.Unlock()
		n := 0
		if _, err := x.ev.drain(func(bool, Flow) { n++ }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	plain := []Binding{{ACL: &acl.ACL{Name: "plain", Family: acl.IPv4, Entries: []*acl.Entry{
		{Seq: 10, Action: acl.Permit, Proto: acl.ProtoAny}}}, Dir: acl.In}}

	if got, err := x.Counts(plain, func(KeyID) bool { return true }); err != nil || len(got) != 0 {
		t.Fatalf("counts without limits: %v, %v", got, err)
	}
	queued() // what came before it left the groups
	idle := dial(t, p.Client, "10.0.0.2:22", 3)
	if n := queued(); n != 0 {
		t.Errorf("%d events queued for an index without limits, want none", n)
	}
	if _, err := x.Counts(plain, func(KeyID) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 0 || x.gen != 0 {
		t.Errorf("idle index holds %d flows after %d dumps, want none and none", x.Len(), x.gen)
	}

	bs := indexBindings()
	indexAgrees(t, x, k, bs, true, "a limit wakes the index (sessions opened while idle)")
	dial(t, p.Client, "10.0.0.2:22", 1)
	indexAgrees(t, x, k, bs, false, "a session opened after it woke (events)")
	idle[0].Close()
	time.Sleep(silentEvery)
	indexAgrees(t, x, k, bs, true, "a session opened while idle ended")

	if _, err := x.Counts(plain, func(KeyID) bool { return true }); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 0 {
		t.Errorf("index idle again holds %d flows, want none", x.Len())
	}
}

// TestKernelIndexSilentFlowsThatCountNowhere: flows open before the index
// listened (silent: they never report their end) make it dump again every
// second only while some of them count under a limit; a host's other old
// flows must not have it dump its whole table every second.
func TestKernelIndexSilentFlowsThatCountNowhere(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.Listen(t, "10.0.0.2:443")
	dialSilent(t, p.Client, p.Server, "10.0.0.2:443", 2) // counted by no limit of indexBindings
	counted := dialSilent(t, p.Client, p.Server, "10.0.0.2:22", 1)
	k := openKernel(t, p.Server)
	x := openIndex(t, p.Server)
	bs := indexBindings()
	dumpsAfter := func(d time.Duration) uint32 {
		t.Helper()
		x.mu.Lock()
		gen := x.gen
		x.mu.Unlock()
		time.Sleep(d)
		if err := x.Update(bs); err != nil {
			t.Fatal(err)
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		return x.gen - gen
	}
	indexAgrees(t, x, k, bs, true, "silent flows, one of them counted")
	if n := dumpsAfter(silentEvery); n != 1 {
		t.Errorf("%d dumps in a second for a silent flow that counts, want 1", n)
	}
	counted[0].Close()
	time.Sleep(silentEvery)
	indexAgrees(t, x, k, bs, true, "the silent flow that counted ended (seen by a dump)")
	dumpsAfter(silentEvery) // the dump that sees no counted silent flow left
	if n := dumpsAfter(silentEvery); n != 0 {
		t.Errorf("%d dumps in a second for silent flows that count nowhere, want none", n)
	}
}

// TestKernelIndexSilentFlowReopenedInPlace: a silent flow reset by the
// server (CLOSE, counting nowhere) and opened again from the same port is
// the same conntrack entry, reopened in place, still silent: the index
// must keep dumping to see that it counts again.
func TestKernelIndexSilentFlowReopenedInPlace(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	dialFrom := func(want netns.Outcome) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: netns.DialTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 40022}}
		var c net.Conn
		var err error
		if e := p.Client.Do(func() error { c, err = d.Dial("tcp", "10.0.0.2:22"); return nil }); e != nil {
			t.Fatal(e)
		}
		if got := netns.Classify(err); got != want {
			t.Fatalf("dial from 10.0.0.1:40022: %v (%v), want %v", got, err, want)
		}
		if c != nil {
			t.Cleanup(func() { c.Close() })
		}
		return c
	}
	// A silent session that the server resets: its entry stays in CLOSE.
	var ln net.Listener
	if err := p.Server.Do(func() (err error) { ln, err = net.Listen("tcp", "10.0.0.2:22"); return err }); err != nil {
		t.Fatal(err)
	}
	p.Server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=0")
	c := dialFrom(netns.Connected)
	p.Server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=2")
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	s.(*net.TCPConn).SetLinger(0)
	s.Close()
	ln.Close()
	c.Read(make([]byte, 1)) // the reset
	c.Close()

	k := openKernel(t, p.Server)
	x := openIndex(t, p.Server)
	bs := indexBindings()
	indexAgrees(t, x, k, bs, true, "a silent flow in CLOSE")
	flows, err := k.Dump()
	if err != nil || len(flows) != 1 || flows[0].TCPState != tcpClose {
		t.Fatalf("want one flow in CLOSE, got %v (%v)", flows, err)
	}

	p.Server.Listen(t, "10.0.0.2:22")
	if err := netns.Echo(dialFrom(netns.Connected)); err != nil {
		t.Fatal(err)
	}
	if flows, err := k.Dump(); err != nil || len(flows) != 1 || !flows[0].Open() {
		t.Fatalf("want the same entry reopened, got %v (%v)", flows, err)
	}
	time.Sleep(silentEvery)
	indexAgrees(t, x, k, bs, true, "the silent flow reopened in place")
}

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

	x, err := NewIndex(p.Server.Fd(), nil)
	if err != nil {
		t.Fatal(err) // events must work here: the test is about them
	}
	defer x.Close()
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

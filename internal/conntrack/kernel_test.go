package conntrack

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	ct "github.com/ti-mo/conntrack"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/sockdiag"
)

// nftLoad loads an nft script inside the namespace.
func nftLoad(t *testing.T, n *netns.NS, script string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.nft")
	if err := os.WriteFile(p, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	n.MustExec(t, "nft", "-f", p)
}

// trackOnly makes the namespace track connections (conntrack only tracks
// while some rule uses ct) without filtering anything.
const trackOnly = `table inet t {
	chain in { type filter hook input priority 0; policy accept; ct state established,related accept; }
}`

func openKernel(t *testing.T, n *netns.NS) *Kernel {
	t.Helper()
	k, err := Open(n.Fd())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// dial opens count echo-checked connections from the client.
func dial(t *testing.T, c *netns.NS, remote string, count int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range count {
		out = append(out, c.Expect(t, "", remote, netns.Connected))
	}
	return out
}

// dialSilent opens count connections whose conntrack entries in server
// send no events at all, ever (silent flows).
//
// Why the sysctl: whether an entry gets the event extension is decided at
// its creation, and with nf_conntrack_events = 2 (the default) by whether
// anyone listens to ctnetlink events — on the whole host, not in the
// namespace (nf_ctnetlink_has_listener is global, since listeners may
// subscribe to every namespace). On a host where anything listens, only
// nf_conntrack_events = 0 in the namespace makes silent entries.
func dialSilent(t *testing.T, client, server *netns.NS, remote string, count int) []net.Conn {
	t.Helper()
	server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=0")
	defer server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_events=2")
	return dial(t, client, remote, count)
}

func TestKernelDumpAttribute(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.Listen(t, "10.0.0.2:80")
	p.Server.Listen(t, "[fd00::2]:22")
	dial(t, p.Client, "10.0.0.2:22", 3)
	dial(t, p.Client, "10.0.0.2:80", 1)
	dial(t, p.Client, "[fd00::2]:22", 2)

	flows, err := openKernel(t, p.Server).Dump()
	if err != nil {
		t.Fatal(err)
	}
	bs := []Binding{
		{ACL: &acl.ACL{Name: "check", Family: acl.IPv4, Entries: []*acl.Entry{
			{Seq: 10, Action: acl.Permit, Proto: 6, Src: host("10.0.0.1"), Dst: host("10.0.0.2"), DstPort: eq(22),
				Connlimits: limits(3, acl.PerSource, 0)},
			{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny}}}, Dir: acl.In},
		{ACL: &acl.ACL{Name: "six", Family: acl.IPv6, Entries: []*acl.Entry{
			{Seq: 10, Action: acl.Permit, Proto: 6, DstPort: eq(22), Connlimits: limits(5, acl.PerPrefix, 64)}}}, Dir: acl.In},
	}
	got := Attribute(bs, flows, nil).Counts()
	want := []KeyCount{
		{ACL: "check", Seq: 10, Key: "10.0.0.1", Sessions: 3, Limit: 3, AtLimit: true},
		{ACL: "six", Family: acl.IPv6, Seq: 10, Kind: acl.PerPrefix, PrefixLen: 64, Key: "fd00::/64", Sessions: 2, Limit: 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counts from a real dump (-want +got):\n%s", diff)
	}
}

// expectReset writes on c and fails unless the connection is reset within
// two seconds.
func expectReset(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	defer c.SetDeadline(time.Time{})
	c.Write([]byte("ping\n"))
	_, err := io.ReadFull(c, make([]byte, 5))
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection %s: got %v, want a reset", c.LocalAddr(), err)
	}
}

// flowsFrom returns the open flows with the client's source port of each
// connection, in order.
func flowsFrom(t *testing.T, k *Kernel, conns []net.Conn) []Flow {
	t.Helper()
	all, err := k.Dump()
	if err != nil {
		t.Fatal(err)
	}
	var out []Flow
	for _, c := range conns {
		lp := netip.MustParseAddrPort(c.LocalAddr().String())
		found := false
		for _, f := range all {
			if f.Proto == 6 && f.SrcPort == lp.Port() && f.Src.Unmap() == lp.Addr().Unmap() {
				out = append(out, f)
				found = true
			}
		}
		if !found {
			t.Fatalf("no conntrack flow for %s", lp)
		}
	}
	return out
}

func TestKernelEndLocalSocketsAtOnce(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	srv := p.Server.Listen(t, "10.0.0.2:22")
	conns := dial(t, p.Client, "10.0.0.2:22", 3)
	k := openKernel(t, p.Server)
	sd, err := sockdiag.Dial(p.Server.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()

	res, err := End(k, sd, flowsFrom(t, k, conns[1:]))
	if err != nil {
		t.Fatal(err)
	}
	if res != (EndResult{Destroyed: 2}) {
		t.Fatalf("End = %+v, want 2 destroyed", res)
	}
	// Idle connections: the client learns at once, without sending.
	for _, c := range conns[1:] {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("idle destroyed connection %s: read got %v, want ECONNRESET", c.LocalAddr(), err)
		}
	}
	if err := netns.Echo(conns[0]); err != nil {
		t.Errorf("connection that was not ended: %v", err)
	}
	// The server's goroutines see their sockets fail asynchronously.
	n := srv.Open()
	for i := 0; i < 40 && n != 1; i++ {
		time.Sleep(50 * time.Millisecond)
		n = srv.Open()
	}
	if n != 1 {
		t.Errorf("server holds %d connections, want 1", n)
	}
}

// resetRules is the rule the compiled ruleset needs in its forward (and
// input/output) base chains, before the established accept.
const resetRules = `table inet t {
	chain routed { type filter hook forward priority 0; policy accept;
		ct mark & 0x40000000 == 0x40000000 tcp flags & rst == 0 reject with tcp reset
		ct state established,related accept
	}
}`

func TestKernelResetRoutedOnNextPacket(t *testing.T) {
	r := netns.NewRouted(t)
	nftLoad(t, r.Router, resetRules)
	r.Server.Listen(t, "10.2.0.2:22")
	r.Server.Listen(t, "[fd02::2]:22")
	conns := dial(t, r.Client, "10.2.0.2:22", 2)
	conns = append(dial(t, r.Client, "[fd02::2]:22", 1), conns...) // one IPv6 among the ended
	k := openKernel(t, r.Router)
	sd, err := sockdiag.Dial(r.Router.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()

	res, err := End(k, sd, flowsFrom(t, k, conns[:2]))
	if err != nil {
		t.Fatal(err)
	}
	if res != (EndResult{Marked: 2}) {
		t.Fatalf("End = %+v, want 2 marked (routed flows have no local socket)", res)
	}
	marked, err := k.DumpMarked(ResetMark)
	if err != nil {
		t.Fatal(err)
	}
	if len(marked) != 2 {
		t.Fatalf("%d flows carry the reset mark, want 2", len(marked))
	}
	for _, c := range conns[:2] {
		expectReset(t, c)
	}
	if err := netns.Echo(conns[2]); err != nil {
		t.Errorf("unmarked routed connection: %v", err)
	}
}

// TestKernelStreamingDumpMatchesLibrary checks our streaming decoder against
// ti-mo/conntrack's on the same table (IPv4, IPv6, marks, states).
func TestKernelStreamingDumpMatchesLibrary(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.MustExec(t, "sysctl", "-q", "-w", "net.netfilter.nf_conntrack_timestamp=1")
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.Listen(t, "[fd00::2]:22")
	conns := dial(t, p.Client, "10.0.0.2:22", 2)
	conns6 := dial(t, p.Client, "[fd00::2]:22", 2)
	k := openKernel(t, p.Server)
	// Marks go through our own update (mark.go), in both families.
	if err := MarkOld(k, flowsFrom(t, k, append(conns[:1:1], conns6[0]))); err != nil {
		t.Fatal(err)
	}
	ours, err := k.Dump()
	if err != nil {
		t.Fatal(err)
	}
	c, err := ct.Dial(&netlink.Config{NetNS: p.Server.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	lib, err := c.Dump(nil)
	if err != nil {
		t.Fatal(err)
	}
	var theirs []Flow
	for i := range lib {
		theirs = append(theirs, fromCT(&lib[i]))
	}
	sortByAge(ours)
	sortByAge(theirs)
	if len(ours) < 4 {
		t.Fatalf("dumped %d flows, want at least 4", len(ours))
	}
	if diff := cmp.Diff(theirs, ours, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("streaming dump differs from ti-mo/conntrack (-lib +ours):\n%s", diff)
	}
	marked, err := k.DumpMarked(OldMark)
	if err != nil {
		t.Fatal(err)
	}
	if len(marked) != 2 || marked[0].Is6() == marked[1].Is6() {
		t.Fatalf("DumpMarked = %+v, want the IPv4 and the IPv6 flow marked", marked)
	}
	for _, f := range marked {
		if f.Mark&OldMark == 0 || f.Start.IsZero() {
			t.Errorf("DumpMarked: %+v, want OldMark and a start time", f)
		}
	}
	// A flow that is gone: the kernel's ENOENT comes back.
	gone := marked[0]
	gone.SrcPort++
	if err := k.SetMark(gone, OldMark); !errors.Is(err, unix.ENOENT) {
		t.Errorf("SetMark of a missing flow: %v, want ENOENT", err)
	}
}

func TestKernelEnableTimestampsInNamespace(t *testing.T) {
	n := netns.New(t)
	if got := strings.TrimSpace(n.MustExec(t, "sysctl", "-n", "net.netfilter.nf_conntrack_timestamp")); got != "0" {
		t.Fatalf("fresh namespace has timestamps %q, want 0", got)
	}
	if err := EnableTimestamps(n.Fd()); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(n.MustExec(t, "sysctl", "-n", "net.netfilter.nf_conntrack_timestamp")); got != "1" {
		t.Errorf("after EnableTimestamps: %q, want 1", got)
	}
}

// fromCT converts a ti-mo/conntrack flow, to compare our decoder with it.
func fromCT(c *ct.Flow) Flow {
	f := Flow{
		ID:           c.ID,
		Proto:        c.TupleOrig.Proto.Protocol,
		Src:          c.TupleOrig.IP.SourceAddress,
		Dst:          c.TupleOrig.IP.DestinationAddress,
		SrcPort:      c.TupleOrig.Proto.SourcePort,
		DstPort:      c.TupleOrig.Proto.DestinationPort,
		ReplySrc:     c.TupleReply.IP.SourceAddress,
		ReplyDst:     c.TupleReply.IP.DestinationAddress,
		ReplySrcPort: c.TupleReply.Proto.SourcePort,
		ReplyDstPort: c.TupleReply.Proto.DestinationPort,
		Mark:         c.Mark,
		Zone:         c.Zone,
		Start:        c.Timestamp.Start,
	}
	if c.ProtoInfo.TCP != nil {
		f.TCPState = c.ProtoInfo.TCP.State
	}
	return f
}

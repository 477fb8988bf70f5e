package nft_test

import (
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// compile parses config text and compiles it for table slxsh.
func compile(t *testing.T, text string) *nft.Ruleset {
	t.Helper()
	return compileWith(t, text, nft.Options{})
}

func compileWith(t *testing.T, text string, o nft.Options) *nft.Ruleset {
	t.Helper()
	cfg, err := cli.ParseConfig(text)
	if err != nil {
		t.Fatalf("parse config: %v\n%s", err, text)
	}
	rs, err := nft.Compile(cfg, o)
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, text)
	}
	return rs
}

// applyConfig compiles text and applies it in ns; it returns the applier
// and the ruleset.
func applyConfig(t *testing.T, ns *netns.NS, text string) (*nft.Applier, *nft.Ruleset) {
	t.Helper()
	rs := compile(t, text)
	a := applier(ns)
	mustApply(t, a, rs)
	return a, rs
}

func hostPort(h string, p int) string {
	return net.JoinHostPort(h, strconv.Itoa(p))
}

// server listens on the given ports of addr in ns.
func server(t *testing.T, ns *netns.NS, addr string, ports ...int) {
	for _, p := range ports {
		ns.Listen(t, hostPort(addr, p))
	}
}

const slxACL = `ip access-list extended check
 seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3
`

const onS0In = `interface s0
 ip access-group check in
`

// extraClient gives the client a second address in the same /24.
const extraClient = "10.0.0.5"

func TestKernelSLXExample(t *testing.T) {
	for _, permitAny := range []bool{true, false} {
		name := "without permit any"
		text := slxACL + onS0In
		if permitAny {
			name = "with permit any"
			text = slxACL + " seq 20 permit ip any any\n" + onS0In
		}
		t.Run(name, func(t *testing.T) {
			p := netns.NewPair(t)
			p.Client.AddAddr(t, "c0", extraClient+"/24")
			server(t, p.Server, netns.PairServer4, 22, 80)
			applyConfig(t, p.Server, text)
			ssh, web := hostPort(netns.PairServer4, 22), hostPort(netns.PairServer4, 80)

			openN(t, p.Client, netns.PairClient4, ssh, 3)
			p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
			if permitAny {
				openN(t, p.Client, netns.PairClient4, web, 5)
				openN(t, p.Client, extraClient, ssh, 5)
			} else {
				p.Client.Expect(t, netns.PairClient4, web, netns.Reset)
				p.Client.Expect(t, extraClient, ssh, netns.Reset)
			}
		})
	}
}

func TestKernelDenyConnlimit(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 deny tcp any any eq 22 connlimit 3
 seq 20 permit ip any any
`+onS0In)
	ssh := hostPort(netns.PairServer4, 22)
	openN(t, p.Client, "", ssh, 2)
	p.Client.Expect(t, "", ssh, netns.Reset)
	p.Client.Expect(t, "", ssh, netns.Reset)
}

func TestKernelPerPrefix24(t *testing.T) {
	p := netns.NewPair(t)
	// 10.0.0.1 and 10.0.0.5 share 10.0.0.0/24; 10.0.1.1 is another /24.
	p.Client.AddAddr(t, "c0", extraClient+"/24")
	p.Client.AddAddr(t, "c0", "10.0.1.1/24")
	p.Server.AddAddr(t, "s0", "10.0.1.2/24")
	server(t, p.Server, netns.PairServer4, 22)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 2 per-prefix 24
`+onS0In)
	ssh := hostPort(netns.PairServer4, 22)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected)
	p.Client.Expect(t, extraClient, ssh, netns.Connected)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
	p.Client.Expect(t, extraClient, ssh, netns.Reset)
	openN(t, p.Client, "10.0.1.1", ssh, 2)
	p.Client.Expect(t, "10.0.1.1", ssh, netns.Reset)
}

func TestKernelPerPrefix64(t *testing.T) {
	p := netns.NewPair(t)
	p.Client.AddAddr(t, "c0", "fd00::5/64")
	p.Client.AddAddr(t, "c0", "fd00:0:0:1::1/64")
	p.Server.AddAddr(t, "s0", "fd00:0:0:1::2/64")
	server(t, p.Server, netns.PairServer6, 22)
	// seq 20 lets neighbour discovery through (see TestKernelIPv6NeighbourDiscovery).
	applyConfig(t, p.Server, `ipv6 access-list extended check6
 seq 10 permit tcp any any eq 22 connlimit 2 per-prefix 64
 seq 20 permit icmp any any
interface s0
 ipv6 access-group check6 in
`)
	ssh := hostPort(netns.PairServer6, 22)
	p.Client.Expect(t, netns.PairClient6, ssh, netns.Connected)
	p.Client.Expect(t, "fd00::5", ssh, netns.Connected)
	p.Client.Expect(t, "fd00::5", ssh, netns.Reset)
	openN(t, p.Client, "fd00:0:0:1::1", ssh, 2)
	p.Client.Expect(t, "fd00:0:0:1::1", ssh, netns.Reset)
	// IPv4 has no ACL on s0: unlimited.
	server(t, p.Server, netns.PairServer4, 22)
	openN(t, p.Client, "", hostPort(netns.PairServer4, 22), 4)
}

func TestKernelTotal(t *testing.T) {
	p := netns.NewPair(t)
	p.Client.AddAddr(t, "c0", extraClient+"/24")
	server(t, p.Server, netns.PairServer4, 22)
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 2 total
`+onS0In)
	ssh := hostPort(netns.PairServer4, 22)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Connected)
	p.Client.Expect(t, extraClient, ssh, netns.Connected)
	p.Client.Expect(t, netns.PairClient4, ssh, netns.Reset)
	p.Client.Expect(t, extraClient, ssh, netns.Reset)
}

func TestKernelOutLocal(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22, 80)
	// The ACL is in the client namespace, on connections it originates.
	applyConfig(t, p.Client, `ip access-list extended egress
 seq 10 permit tcp any host 10.0.0.2 eq 22 connlimit 2
 seq 20 permit tcp any any eq 80
interface c0
 ip access-group egress out
`)
	ssh := hostPort(netns.PairServer4, 22)
	openN(t, p.Client, "", ssh, 2)
	// The reset that the output chain sends reaches the local socket.
	p.Client.Expect(t, "", ssh, netns.Reset)
	openN(t, p.Client, "", hostPort(netns.PairServer4, 80), 3)
}

func TestKernelInRouted(t *testing.T) {
	r := netns.NewRouted(t)
	server(t, r.Server, netns.RoutedServer4, 22, 80)
	applyConfig(t, r.Router, `ip access-list extended transit
 seq 10 permit tcp any any eq 22 connlimit 2
interface rc
 ip access-group transit in
`)
	ssh := hostPort(netns.RoutedServer4, 22)
	openN(t, r.Client, "", ssh, 2)
	r.Client.Expect(t, "", ssh, netns.Reset)
	// Implicit deny for anything else routed in on rc.
	r.Client.Expect(t, "", hostPort(netns.RoutedServer4, 80), netns.Reset)
}

const survive = `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit tcp any any eq %s
` + onS0In

func TestKernelCountsSurvive(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22, 80, 81)
	a, _ := applyConfig(t, p.Server, strings.Replace(survive, "%s", "80", 1))
	ssh := hostPort(netns.PairServer4, 22)
	matches, refused := nft.CounterNames(acl.IPv4, "check", acl.In, 10)
	// wantCounters checks the entry's counters: every connection attempt to
	// 22 is one match (one SYN each: admitted ones are answered at once,
	// refused ones reset), so a counter that restarted from zero shows.
	wantCounters := func(step string, a *nft.Applier, m, r uint64) {
		t.Helper()
		c := counters(t, a)
		if c[matches].Packets != m || c[refused].Packets != r {
			t.Fatalf("%s: %s=%v %s=%v, want %d and %d packets", step, matches, c[matches], refused, c[refused], m, r)
		}
	}
	openN(t, p.Client, "", ssh, 3)
	p.Client.Expect(t, "", ssh, netns.Reset)
	wantCounters("3 admitted, 1 refused", a, 4, 1)

	// (a) another entry changed: the 4th is still refused.
	rs2 := compile(t, strings.Replace(survive, "%s", "81", 1))
	mustApply(t, a, rs2)
	p.Client.Expect(t, "", ssh, netns.Reset)
	openN(t, p.Client, "", hostPort(netns.PairServer4, 81), 1)
	wantCounters("after seq 20 changed and one more refusal", a, 5, 2)

	// (b) the same config re-applied: by the same Applier, then by a fresh
	// one (an agent restart), which reconciles what it finds.
	mustApply(t, a, rs2)
	b := applier(p.Server)
	mustApply(t, b, compile(t, strings.Replace(survive, "%s", "81", 1)))
	p.Client.Expect(t, "", ssh, netns.Reset)
	wantCounters("after re-applying and one more refusal", b, 6, 3)
}

func TestKernelFullSetRefuses(t *testing.T) {
	p := netns.NewPair(t)
	p.Client.AddAddr(t, "c0", "10.0.0.5/24")
	p.Client.AddAddr(t, "c0", "10.0.0.6/24")
	server(t, p.Server, netns.PairServer4, 22)
	rs := compileWith(t, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 5
 seq 20 permit ip any any
`+onS0In, nft.Options{SetSize: 2})
	mustApply(t, applier(p.Server), rs)
	ssh := hostPort(netns.PairServer4, 22)
	p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected)
	p.Client.Expect(t, "10.0.0.5", ssh, netns.Connected)
	// Never fail open: the third source cannot be counted, so it is refused.
	p.Client.Expect(t, "10.0.0.6", ssh, netns.Reset)
	// Sources already in the set still get their budget.
	p.Client.Expect(t, "10.0.0.1", ssh, netns.Connected)
}

func TestKernelRefusedTransactionKeepsRules(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	a, _ := applyConfig(t, p.Server, strings.Replace(survive, "%s", "80", 1))
	ssh := hostPort(netns.PairServer4, 22)
	openN(t, p.Client, "", ssh, 3)
	before := listTableStateless(t, p.Server, "slxsh")

	bad := compile(t, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 10
`+onS0In)
	last := bad.Chains[len(bad.Chains)-1]
	last.Rules = append(last.Rules, rule("broken", jump("no_such_chain")))
	err := a.Apply(bad)
	if !errors.Is(err, nft.ErrRefused) {
		t.Fatalf("apply of a broken ruleset: %v, want ErrRefused", err)
	}
	if after := listTableStateless(t, p.Server, "slxsh"); after != before {
		t.Errorf("refused transaction changed the table:\n%s\nwant:\n%s", after, before)
	}
	p.Client.Expect(t, "", ssh, netns.Reset)
}

// TestKernelIPv6NeighbourDiscovery: an IPv6 ACL on an interface must not
// stop neighbour discovery, or no IPv6 connection works at all (IOS and SLX
// permit ND implicitly before the implicit deny).
func TestKernelIPv6NeighbourDiscovery(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer6, 22)
	applyConfig(t, p.Server, `ipv6 access-list extended check6
 seq 10 permit tcp any any eq 22
interface s0
 ipv6 access-group check6 in
`)
	p.Client.Expect(t, "", hostPort(netns.PairServer6, 22), netns.Connected)
}

var handleNumRE = regexp.MustCompile(`# handle (\d+)`)

// ruleHandles lists the handles of a chain's rules: re-added rules get new
// ones.
func ruleHandles(t *testing.T, ns *netns.NS, chain string) string {
	t.Helper()
	out := ns.MustExec(t, "nft", "-a", "list", "chain", "inet", "slxsh", chain)
	var hs []string
	for _, m := range handleNumRE.FindAllStringSubmatch(out, -1) {
		hs = append(hs, m[1])
	}
	if len(hs) < 2 { // the chain's own handle and at least one rule
		t.Fatalf("no rules in chain %s:\n%s", chain, out)
	}
	return strings.Join(hs, " ")
}

const twoACLs = `ip access-list extended a
 seq 10 permit tcp any any eq 22 connlimit %s
ip access-list extended b
 seq 10 permit tcp any any eq 80
interface s0
 ip access-group a in
 ip access-group b out
`

func TestKernelApplyKeepsUnchangedChains(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	mustApply(t, a, compile(t, strings.Replace(twoACLs, "%s", "3", 1)))
	chA, chB := nft.ChainName(acl.IPv4, "a", acl.In), nft.ChainName(acl.IPv4, "b", acl.Out)
	a1, b1 := ruleHandles(t, n, chA), ruleHandles(t, n, chB)

	// Only ACL a changed: b's chain is not touched.
	mustApply(t, a, compile(t, strings.Replace(twoACLs, "%s", "4", 1)))
	a2, b2 := ruleHandles(t, n, chA), ruleHandles(t, n, chB)
	if a2 == a1 {
		t.Errorf("changed chain %s kept its rules (handles %s)", chA, a1)
	}
	if b2 != b1 {
		t.Errorf("unchanged chain %s rebuilt: handles %s, then %s", chB, b1, b2)
	}

	// After someone else's commit the Applier knows nothing: all rebuilt.
	n.MustExec(t, "nft", "add table inet other")
	mustApply(t, a, compile(t, strings.Replace(twoACLs, "%s", "3", 1)))
	if b3 := ruleHandles(t, n, chB); b3 == b2 {
		t.Errorf("chain %s kept after a foreign commit (handles %s)", chB, b3)
	}

	// A fresh Applier (agent restart) rebuilds everything too.
	b4 := ruleHandles(t, n, chB)
	mustApply(t, applier(n), compile(t, strings.Replace(twoACLs, "%s", "3", 1)))
	if b5 := ruleHandles(t, n, chB); b5 == b4 {
		t.Errorf("fresh Applier kept chain %s (handles %s)", chB, b5)
	}
}

// TestKernelInSyncAfterForeignCommit: a commit to another table makes the
// Applier read the table back, and it is still in sync; a change to ours
// is drift.
func TestKernelInSyncAfterForeignCommit(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	rs := compile(t, strings.Replace(twoACLs, "%s", "3", 1))
	mustApply(t, a, rs)
	n.MustExec(t, "nft", "add table inet other")
	if ok, err := a.InSync(rs); !ok || err != nil {
		t.Errorf("InSync after a commit elsewhere: %v, %v", ok, err)
	}
	n.MustExec(t, "nft", "add rule inet slxsh "+nft.ChainName(acl.IPv4, "b", acl.Out)+" accept")
	if ok, err := a.InSync(rs); ok || err != nil {
		t.Errorf("InSync after a rule added to our chain: %v, %v", ok, err)
	}
}

// TestKernelDormantTableIsDrift: a table made dormant by someone else
// (its rules kept, nothing enforced) is drift, and Apply wakes it: the
// limit holds again.
func TestKernelDormantTableIsDrift(t *testing.T) {
	p := netns.NewPair(t)
	p.Server.Listen(t, srv)
	a := applier(p.Server)
	rs := compile(t, "ip access-list extended check\n seq 10 permit tcp any any eq 9000 connlimit 1\n seq 20 permit ip any any\n"+onS0In)
	mustApply(t, a, rs)
	p.Client.Expect(t, "", srv, netns.Connected)
	p.Client.Expect(t, "", srv, netns.Reset)
	p.Server.MustExec(t, "nft", "add table inet slxsh { flags dormant; }")
	p.Client.Expect(t, "", srv, netns.Connected) // dormant: nothing enforced
	if d, err := a.Drift(rs); d != "table dormant" || err != nil {
		t.Fatalf("Drift of a dormant table = %q, %v", d, err)
	}
	if err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if d, err := a.Drift(rs); d != "" || err != nil {
		t.Fatalf("Drift after Apply = %q, %v", d, err)
	}
	p.Client.Expect(t, "", srv, netns.Reset)
}

// TestKernelRefusals: deny resets by default; hard-drop and `refuse drop`
// drop silently, also for connections over a limit.
func TestKernelRefusals(t *testing.T) {
	p := netns.NewPair(t)
	for _, port := range []string{"22", "23", "24", "25", "80"} {
		p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, port))
	}
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 hard-drop tcp any any eq 23
 seq 20 deny tcp any any eq 24 refuse drop
 seq 30 deny tcp any any eq 25
 seq 40 permit tcp any any eq 22 connlimit 1 refuse drop
 seq 50 permit ip any any
`+onS0In)
	at := func(port string) string { return net.JoinHostPort(netns.PairServer4, port) }
	p.Client.Expect(t, "", at("23"), netns.TimedOut)
	p.Client.Expect(t, "", at("24"), netns.TimedOut)
	p.Client.Expect(t, "", at("25"), netns.Reset)
	p.Client.Expect(t, "", at("22"), netns.Connected)
	p.Client.Expect(t, "", at("22"), netns.TimedOut)
	p.Client.Expect(t, "", at("80"), netns.Connected)
}

// TestKernelApplyLargeACL: a batch of thousands of rules fits the socket
// buffers (no EMSGSIZE, no lost acknowledgements), and reads back in sync.
func TestKernelApplyLargeACL(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	for _, changed := range []bool{false, true} {
		rs := compile(t, benchConfig(3000, changed))
		mustApply(t, a, rs)
		if ok, err := applier(n).InSync(rs); !ok || err != nil {
			t.Fatalf("fresh Applier: InSync = %v, %v", ok, err)
		}
	}
	out := n.MustExec(t, "nft", "list", "table", "inet", "slxsh")
	// An entry is its rules, or (a plain permit in a map) a counter map's element.
	if got := strings.Count(out, "comment \"acl=big dir=in seq=") + strings.Count(out, "_matches\",") +
		strings.Count(out, "_matches\" }"); got < 3000 {
		t.Errorf("table has %d entry rules and counter elements, want at least 3000", got)
	}
	if !strings.Contains(out, " . tcp . 65000 : goto ip_big_in_1500") {
		t.Error("changed entry missing")
	}
}

// TestKernelNoWindowDuringReapply: while the same config is re-applied (by
// fresh Appliers, as after agent restarts) and a changed one alternates with
// it, a source at its limit never gets a connection through.
func TestKernelNoWindowDuringReapply(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22, 80, 81)
	ssh := hostPort(netns.PairServer4, 22)
	versions := []*nft.Ruleset{
		compile(t, strings.Replace(survive, "%s", "80", 1)),
		compile(t, strings.Replace(survive, "%s", "81", 1)),
	}
	mustApply(t, applier(p.Server), versions[0])
	openN(t, p.Client, "", ssh, 3)

	done := make(chan struct{})
	type result struct {
		dials, through int
		err            error
	}
	res := make(chan result)
	go func() {
		var r result
		for {
			select {
			case <-done:
				res <- r
				return
			default:
			}
			c, got, err := p.Client.Dial("", ssh, netns.DialTimeout)
			r.dials++
			if got == netns.Connected {
				r.through++
				c.Close()
			} else if got != netns.Reset {
				r.err = err
			}
			if r.dials >= 2000 {
				<-done
				res <- r
				return
			}
		}
	}()
	for i := range 20 {
		if err := applier(p.Server).Apply(versions[i%2]); err != nil {
			close(done)
			<-res
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	close(done)
	r := <-res
	if r.through > 0 || r.err != nil {
		t.Errorf("%d of %d connections over the limit got through during re-applies (other error: %v)", r.through, r.dials, r.err)
	}
	if r.dials == 0 {
		t.Error("no connection attempted during the re-applies")
	}
	t.Logf("%d refused attempts during 20 applies", r.dials)
}

// TestKernelUDPRefusals: for non-TCP traffic the default refusal is ICMP
// administratively prohibited; hard-drop is silent; the implicit deny
// refuses like deny.
func TestKernelUDPRefusals(t *testing.T) {
	p := netns.NewPair(t)
	at := func(port string) string { return net.JoinHostPort(netns.PairServer4, port) }
	for _, port := range []string{"53", "54", "55", "56"} {
		p.Server.ListenUDP(t, at(port))
	}
	applyConfig(t, p.Server, `ip access-list extended check
 seq 10 permit udp any any eq 53
 seq 20 deny udp any any eq 54
 seq 30 hard-drop udp any any eq 55
`+onS0In)
	for _, c := range []struct {
		port string
		want netns.Outcome
	}{{"53", netns.Connected}, {"54", netns.Unreachable}, {"55", netns.TimedOut}, {"56", netns.Unreachable}} {
		if got, err := p.Client.ExchangeUDP("", at(c.port), netns.DialTimeout); got != c.want {
			t.Errorf("udp port %s: %v (%v), want %v", c.port, got, err, c.want)
		}
	}
}

// TestKernelOutRouted: `out` also filters connections routed out through
// the interface.
func TestKernelOutRouted(t *testing.T) {
	r := netns.NewRouted(t)
	server(t, r.Server, netns.RoutedServer4, 22)
	r.Server.Listen(t, net.JoinHostPort(netns.RoutedServer6, "22"))
	applyConfig(t, r.Router, `ip access-list extended toward
 seq 10 permit tcp any any eq 22 connlimit 2
interface rs
 ip access-group toward out
`)
	ssh := hostPort(netns.RoutedServer4, 22)
	openN(t, r.Client, "", ssh, 2)
	r.Client.Expect(t, "", ssh, netns.Reset)
	// IPv6 has no ACL on rs: not limited.
	openN(t, r.Client, "", net.JoinHostPort(netns.RoutedServer6, "22"), 3)
}

// TestKernelReapplyUnchangedCommitsNothing: re-applying what the kernel is
// known to hold is a no-op; after someone else's change it is a repair.
func TestKernelReapplyUnchangedCommitsNothing(t *testing.T) {
	n := netns.New(t)
	a := applier(n)
	text := strings.Replace(twoACLs, "%s", "3", 1)
	mustApply(t, a, compile(t, text))
	before := ruleHandles(t, n, "input")
	mustApply(t, a, compile(t, text)) // an equal ruleset, another value
	if after := ruleHandles(t, n, "input"); after != before {
		t.Errorf("re-apply of an unchanged ruleset rebuilt chain input: %s, then %s", before, after)
	}
	n.MustExec(t, "nft", "flush chain inet slxsh input")
	mustApply(t, a, compile(t, text))
	if got := ruleHandles(t, n, "input"); got == before {
		t.Errorf("flushed chain not restored")
	}
}

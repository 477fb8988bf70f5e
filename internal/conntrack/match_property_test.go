package conntrack

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestAttributionAgreesWithSimulator: for random ACLs and flows, the entry
// that session attribution says admits a flow is the entry whose compiled
// rules admit it in the simulator of the compiled ruleset, and a flow the
// one refuses the other refuses. Both match through acl.Entry.Matches;
// this checks that the compiler's rules mean the same.
func TestAttributionAgreesWithSimulator(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	pickAddr, pickPort := randomMatches(r)
	addrs, ports := randomAddrs, randomPorts
	for round := range 200 {
		l := &acl.ACL{Name: "p", Family: acl.IPv4}
		for i := range 1 + r.IntN(8) {
			e := &acl.Entry{Seq: 10 * (i + 1), Action: []acl.Action{acl.Permit, acl.Deny}[r.IntN(2)],
				Proto: []int{acl.ProtoAny, acl.ProtoTCP, acl.ProtoUDP}[r.IntN(3)], Src: pickAddr(), Dst: pickAddr()}
			if e.Proto != acl.ProtoAny {
				e.SrcPort, e.DstPort = pickPort(), pickPort()
			}
			l.Entries = append(l.Entries, e)
		}
		cfg, rs := compiledOnEth0(t, l)
		for i := range 20 {
			f := Flow{Proto: []uint8{6, 17}[r.IntN(2)], Src: netip.MustParseAddr(addrs[r.IntN(len(addrs))]),
				Dst: netip.MustParseAddr(addrs[r.IntN(len(addrs))]), SrcPort: ports[r.IntN(len(ports))],
				DstPort: ports[r.IntN(len(ports))], TCPState: 3}
			a := Attribute(Bindings(cfg, func(i *acl.Interface) string { return i.Name }), []Flow{f}, nil)
			attributed := 0
			for id, idx := range a.Admitted {
				if len(idx) > 0 {
					attributed = id.Seq
				}
			}
			sim := nft.NewSimOpen(rs)
			out, _ := sim.Connect(nft.Flow{Hook: "input", IIF: "eth0", Src: f.Src, Dst: f.Dst, Proto: f.Proto, SPort: f.SrcPort, DPort: f.DstPort})
			simSeq := 0
			for _, e := range l.Entries {
				if m, _ := nft.CounterNames(acl.IPv4, "p", acl.In, e.Seq); sim.Counter(m) > 0 {
					simSeq = e.Seq
					break
				}
			}
			simAdmits := out == nft.Admitted
			if (attributed != 0) != simAdmits || (simAdmits && attributed != simSeq) {
				t.Fatalf("round %d flow %d %s: attribution admits by seq %d, simulator %v by seq %d\n%s",
					round, i, f, attributed, out, simSeq, acl.Format(cfg))
			}
		}
	}
}

// randomAddrs and randomPorts are what the property tests' flows come
// from and their entries match (randomMatches); randomAddrs6 are the
// IPv6 ones.
var (
	randomAddrs  = []string{"10.0.0.1", "10.0.0.2", "10.0.1.7", "10.1.0.1", "192.168.5.5"}
	randomAddrs6 = []string{"fd00::1", "fd00::2", "fd00:0:0:1::7", "fd01::1", "2001:db8::5"}
	randomPorts  = []uint16{22, 23, 80, 443, 1024, 40000}
)

// randomMatches returns pickers of random IPv4 address and port matches of
// entries: any, hosts, prefixes and a wildcard; every port operator.
func randomMatches(r *rand.Rand) (pickAddr func() acl.Addr, pickPort func() acl.PortMatch) {
	w, _ := acl.NewWildcardAddr(netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("0.0.255.0"))
	return randomAddrMatches(r, randomAddrs, []string{"10.0.0.0/24", "10.0.0.0/8", "10.0.1.0/25", "192.168.0.0/16"}, &w),
		randomPortMatches(r)
}

// randomMatches6 is randomMatches for IPv6 ACLs (no wildcards).
func randomMatches6(r *rand.Rand) (pickAddr func() acl.Addr, pickPort func() acl.PortMatch) {
	return randomAddrMatches(r, randomAddrs6, []string{"fd00::/64", "fd00::/16", "fd00:0:0:1::/80", "2001:db8::/32"}, nil),
		randomPortMatches(r)
}

func randomAddrMatches(r *rand.Rand, hosts, prefixes []string, wildcard *acl.Addr) func() acl.Addr {
	return func() acl.Addr {
		switch r.IntN(5) {
		case 1:
			return host(hosts[r.IntN(len(hosts))])
		case 2:
			return pfx(prefixes[r.IntN(len(prefixes))])
		case 3:
			if wildcard != nil {
				return *wildcard
			}
			return host(hosts[r.IntN(len(hosts))])
		}
		return acl.Addr{}
	}
}

func randomPortMatches(r *rand.Rand) func() acl.PortMatch {
	return func() acl.PortMatch {
		p := randomPorts[r.IntN(len(randomPorts))]
		switch r.IntN(6) {
		case 0:
			return acl.PortMatch{Op: acl.PortEq, Lo: p}
		case 1:
			return acl.PortMatch{Op: acl.PortNeq, Lo: p}
		case 2:
			return acl.PortMatch{Op: acl.PortLt, Lo: max(p, 1)}
		case 3:
			return acl.PortMatch{Op: acl.PortGt, Lo: min(p, 65534)}
		case 4:
			return acl.PortMatch{Op: acl.PortRange, Lo: p, Hi: p + 100}
		}
		return acl.PortMatch{}
	}
}

// compiledOnEth0 is a configuration with l applied in on eth0, compiled.
func compiledOnEth0(t *testing.T, l *acl.ACL) (*acl.Config, *nft.Ruleset) {
	t.Helper()
	cfg := acl.New()
	cfg.ACLs = []*acl.ACL{l}
	cfg.Interfaces = []*acl.Interface{{Kind: acl.IfLinux, Name: "eth0", Groups: [2][2]string{{l.Name, ""}, {"", ""}}}}
	rs, err := nft.Compile(cfg, nft.Options{})
	if err != nil {
		t.Fatalf("%v\n%s", err, acl.Format(cfg))
	}
	return cfg, rs
}

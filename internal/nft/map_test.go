package nft_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// Classification maps must decide every connection as the linear rules
// do: random lists over a small universe of addresses, protocols and ports
// (so that entries overlap and connections match), compiled both ways and
// driven through the simulator with the same attempts, give the same
// outcomes and the same counters; no lookup ever matches two elements.

// mapUniverse draws entries and flows from a few addresses and ports.
type mapUniverse struct{ r *rand.Rand }

var (
	mapHosts  = []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.1.1"}
	mapPrefix = []string{"10.0.0.0/30", "10.0.0.0/29", "10.0.0.4/31", "10.0.0.0/16"}
	mapPorts  = []uint16{22, 80, 443, 8080}
)

func (u mapUniverse) addr(f acl.Family) acl.Addr {
	switch u.r.IntN(6) {
	case 0, 1:
		return acl.AnyAddr
	case 2:
		return acl.NewPrefixAddr(netip.MustParsePrefix(mapPrefix[u.r.IntN(len(mapPrefix))]))
	}
	return acl.NewHostAddr(netip.MustParseAddr(mapHosts[u.r.IntN(len(mapHosts))]))
}

func (u mapUniverse) port() acl.PortMatch {
	p := mapPorts[u.r.IntN(len(mapPorts))]
	switch u.r.IntN(9) {
	case 0, 1, 2:
		return acl.PortMatch{}
	case 3:
		return acl.PortMatch{Op: acl.PortNeq, Lo: p}
	case 4:
		return acl.PortMatch{Op: acl.PortLt, Lo: p}
	case 5:
		return acl.PortMatch{Op: acl.PortGt, Lo: p}
	case 6:
		return acl.PortMatch{Op: acl.PortRange, Lo: p, Hi: p + 100}
	}
	return acl.PortMatch{Op: acl.PortEq, Lo: p}
}

func (u mapUniverse) entry(seq int, out bool) *acl.Entry {
	e := &acl.Entry{Seq: seq, Action: []acl.Action{acl.Permit, acl.Permit, acl.Deny, acl.HardDrop}[u.r.IntN(4)]}
	e.Proto = []int{acl.ProtoTCP, acl.ProtoTCP, acl.ProtoTCP, acl.ProtoUDP, acl.ProtoAny, 1}[u.r.IntN(6)]
	e.Src, e.Dst = u.addr(acl.IPv4), u.addr(acl.IPv4)
	if acl.HasPorts(e.Proto) {
		e.DstPort = u.port()
		if u.r.IntN(5) == 0 {
			e.SrcPort = u.port()
		}
	}
	if e.Action != acl.HardDrop && u.r.IntN(4) == 0 {
		key := []acl.KeyKind{acl.PerSource, acl.Total, acl.PerDestination}[u.r.IntN(3)]
		e.Connlimits = []acl.Connlimit{{N: 1 + u.r.IntN(3), Key: key}}
	}
	if u.r.IntN(10) == 0 {
		e.Log = true
	}
	if out && u.r.IntN(12) == 0 {
		e.Owner = &acl.Owner{UID: 1000} // not mappable: ends a run
	}
	return e
}

func (u mapUniverse) config(n int) *acl.Config {
	c := acl.New()
	if _, err := c.EnsureACL(acl.IPv4, "m"); err != nil {
		panic(err)
	}
	dir := acl.In
	if u.r.IntN(3) == 0 {
		dir = acl.Out
	}
	for i := 1; i <= n; i++ {
		_ = c.AddEntry(acl.IPv4, "m", u.entry(10*i, dir == acl.Out)) // a duplicate is refused: fine
	}
	if _, err := c.EnsureInterface(acl.IfManagement, "0"); err != nil {
		panic(err)
	}
	if err := c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, dir, "m"); err != nil {
		panic(err)
	}
	return c
}

func (u mapUniverse) flow(out bool) nft.Flow {
	host := func() netip.Addr {
		if u.r.IntN(8) == 0 {
			return netip.MustParseAddr("192.168.9.9")
		}
		return netip.MustParseAddr(mapHosts[u.r.IntN(len(mapHosts))])
	}
	port := func() uint16 {
		if u.r.IntN(3) == 0 {
			return uint16(1 + u.r.IntN(65535))
		}
		return mapPorts[u.r.IntN(len(mapPorts))] + uint16(u.r.IntN(2))
	}
	f := nft.Flow{Hook: "input", IIF: "eth0", Src: host(), Dst: host(),
		Proto: []uint8{acl.ProtoTCP, acl.ProtoTCP, acl.ProtoUDP, 1, 47}[u.r.IntN(5)], SPort: port(), DPort: port()}
	if out {
		f.Hook, f.IIF, f.OIF = "output", "", "eth0"
	}
	return f
}

func compileRun(t *testing.T, c *acl.Config, run int) *nft.Ruleset {
	t.Helper()
	rs, err := nft.Compile(c, nft.Options{MgmtInterface: "eth0", MapRun: run, LookupUser: func(string) (uint32, error) { return 1000, nil }})
	if err != nil {
		t.Fatalf("compile: %v\n%s", err, acl.Format(c))
	}
	return rs
}

func TestMapsDecideAsRules(t *testing.T) {
	maps, mapped := 0, 0
	for trial := range 300 {
		u := mapUniverse{rand.New(rand.NewPCG(uint64(trial), 7))}
		c := u.config(5 + u.r.IntN(30))
		linear, withMaps := compileRun(t, c, -1), compileRun(t, c, 2)
		for _, s := range withMaps.Sets {
			if s.Kind == nft.SetVerdictMap {
				maps++
				mapped += len(s.Map.Elems)
			}
		}
		a, b := nft.NewSimOpen(linear), nft.NewSimOpen(withMaps)
		out := c.Interfaces[0].Groups[acl.IPv4][acl.Out] != ""
		var openA, openB []int
		for i := range 150 {
			if len(openA) > 0 && u.r.IntN(4) == 0 {
				j := u.r.IntN(len(openA))
				a.Close(openA[j])
				b.Close(openB[j])
				openA, openB = slices.Delete(openA, j, j+1), slices.Delete(openB, j, j+1)
			}
			f := u.flow(out)
			ga, ia := a.Connect(f)
			gb, ib := b.Connect(f)
			if ga != gb {
				t.Fatalf("trial %d attempt %d %v: rules %v, maps %v\n%s\n%s", trial, i, f, ga, gb, acl.Format(c), withMaps)
			}
			if ga == nft.Admitted {
				openA, openB = append(openA, ia), append(openB, ib)
			}
		}
		if b.Ambiguous > 0 {
			t.Fatalf("trial %d: %d lookups matched two elements\n%s", trial, b.Ambiguous, withMaps)
		}
		for _, name := range linear.Counters {
			if a.Counter(name) != b.Counter(name) {
				t.Fatalf("trial %d: counter %s: rules %d, maps %d\n%s", trial, name, a.Counter(name), b.Counter(name), acl.Format(c))
			}
		}
	}
	if maps == 0 || mapped < 1000 {
		t.Fatalf("the random lists made %d maps of %d elements: the test proves nothing", maps, mapped)
	}
	t.Logf("%d maps, %d elements", maps, mapped)
}

// A long list cut into chunks of maps decides as its rules do: flows to
// its entries (some over their limits), to the ones around them, and to
// none.
func TestLongListChunksDecideAsRules(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 31))
	c := longList(t, r, 12000)
	linear, withMaps := compileRun(t, c, -1), compileRun(t, c, 0)
	maps := 0
	for _, s := range withMaps.Sets {
		if s.Map != nil {
			maps++
		}
	}
	if maps < 3 {
		t.Fatalf("%d maps: the list was not cut", maps)
	}
	a, b := nft.NewSimOpen(linear), nft.NewSimOpen(withMaps)
	for i := range 3000 {
		seq := 1 + r.IntN(12000)
		if r.IntN(4) == 0 {
			seq += r.IntN(3) - 1
		}
		src := netip.AddrFrom4([4]byte{10, byte(seq >> 16), byte(seq >> 8), byte(seq)})
		if r.IntN(5) == 0 {
			src = netip.AddrFrom4([4]byte{192, 168, 0, byte(r.IntN(256))})
		}
		f := nft.Flow{Hook: "input", IIF: "eth0", Src: src, Dst: netip.MustParseAddr("10.9.9.9"), Proto: acl.ProtoTCP,
			SPort: uint16(40000 + r.IntN(1000)), DPort: uint16(seq)}
		ga, _ := a.Connect(f)
		gb, _ := b.Connect(f)
		if ga != gb {
			t.Fatalf("attempt %d %v: rules %v, maps %v", i, f, ga, gb)
		}
	}
	if b.Ambiguous > 0 {
		t.Fatalf("%d lookups matched two elements", b.Ambiguous)
	}
	for _, name := range linear.Counters {
		if a.Counter(name) != b.Counter(name) {
			t.Fatalf("counter %s: rules %d, maps %d", name, a.Counter(name), b.Counter(name))
		}
	}
}

// A run of up to mapChunkMin (1024) entries stays one map: a list of 1000
// costs a new connection one lookup.
func TestListOf1024IsOneMap(t *testing.T) {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i <= 1024; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp host 10.9.%d.%d any eq %d\n", i, i/256, i%256, 1000+i)
	}
	b.WriteString("interface management 0\n ip access-group big in\n")
	maps := func(rs *nft.Ruleset) int {
		n := 0
		for _, s := range rs.Sets {
			if s.Map != nil {
				n++
			}
		}
		return n
	}
	if n := maps(compileRun(t, mustParse(t, b.String()), 0)); n != 1 {
		t.Fatalf("1024 entries in %d maps, want 1", n)
	}
	b.WriteString("ip access-list extended big\n")
	for i := 1025; i <= 3000; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp host 10.9.%d.%d any eq %d\n", i, i/256, i%256, 1000+i)
	}
	if n := maps(compileRun(t, mustParse(t, b.String()), 0)); n < 2 {
		t.Fatalf("3000 entries in %d map, want them cut", n)
	}
}

// A map holds the run's entries as nft lists them, and its lookup takes
// the entries' place in the list.
func TestMapShape(t *testing.T) {
	c := mustParse(t, `ip access-list extended check
 seq 5 deny tcp host 10.0.0.9 any eq 22
 seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3
 seq 20 permit tcp host 10.0.0.3 any eq 80
 seq 30 deny udp 10.1.0.0 0.0.255.255 any connlimit 2
 seq 40 permit tcp any any neq 443
 seq 45 permit udp any any eq 53
 seq 50 permit icmp any any
 seq 60 permit tcp any any eq 443
interface management 0
 ip access-group check in
`)
	rs := compileRun(t, c, 2)
	text := rs.String()
	for _, want := range []string{
		"map ip_check_in_map5_17 {\n\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service : verdict\n\t\tflags interval\n" +
			"\t\telements = { 10.0.0.9 . 0.0.0.0/0 . tcp . 22 : jump ip_check_in_5,\n" +
			"\t\t\t     10.0.0.1 . 10.0.0.2 . tcp . 22 : goto ip_check_in_10,\n" +
			"\t\t\t     10.1.0.0/16 . 0.0.0.0/0 . udp . 0-65535 : jump ip_check_in_30 }",
		// a plain permit names its counter in the counter map of the run
		"map ip_check_in_map5_17_c {\n\t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service : counter\n\t\tflags interval\n" +
			"\t\telements = { 10.0.0.3 . 0.0.0.0/0 . tcp . 80 : \"ip_check_in_20_matches\" }",
		"counter name ip saddr . ip daddr . meta l4proto . th dport map @ip_check_in_map5_17_c return comment \"acl=check dir=in map=5 counters\"\n" +
			"\t\tip saddr . ip daddr . meta l4proto . th dport vmap @ip_check_in_map5_17 comment \"acl=check dir=in map=5\"",
		// neq is two elements; icmp cannot share a map with ports: seq 50 is a rule
		"type inet_proto . inet_service : counter\n\t\tflags interval\n\t\telements = { tcp . 0-442 : \"ip_check_in_40_matches\",\n" +
			"\t\t\t     tcp . 444-65535 : \"ip_check_in_40_matches\",\n\t\t\t     udp . 53 : \"ip_check_in_45_matches\" }",
		"meta l4proto icmp counter name \"ip_check_in_50_matches\" return comment \"acl=check dir=in seq=50\"",
		"chain ip_check_in_10 {\n\t\tmeta l4proto tcp ct state new ct mark & 0x18000000 == 0x00000000 counter name \"ip_check_in_10_matches\"",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("want\n%s\nin\n%s", want, text)
		}
	}
	for _, plain := range []string{"chain ip_check_in_20 ", "chain ip_check_in_40 ", "ip_check_in_map40_14 {"} {
		if strings.Contains(text, plain) {
			t.Errorf("%q: a plain permit's chain, or a verdict map of plain permits, in\n%s", plain, text)
		}
	}
}

// Renewals sees through maps: for random changes of random lists, every
// limit that the linear form renews is renewed in the mapped form too (a
// missed renewal would let a limit count sessions its entry no longer
// sees, or miss some it does).
func TestRenewalsSeeThroughMaps(t *testing.T) {
	seen := 0
	for trial := range 300 {
		u := mapUniverse{rand.New(rand.NewPCG(uint64(trial), 13))}
		c0 := u.config(10 + u.r.IntN(20))
		for _, e := range c0.ACL(acl.IPv4, "m").Entries {
			e.Owner = nil // both forms compile for in and out (before any clone shares the entries)
		}
		c1 := c0.Clone()
		l := c1.ACL(acl.IPv4, "m")
		switch i := u.r.IntN(len(l.Entries)); u.r.IntN(3) {
		case 0:
			l.Entries = slices.Delete(l.Entries, i, i+1)
		case 1:
			e := u.entry(l.Entries[i].Seq, false)
			e.Connlimits = nil
			l.Entries[i] = e
		default:
			e := u.entry(l.Entries[i].Seq+1, false)
			e.Connlimits = nil
			_ = c1.AddEntry(acl.IPv4, "m", e)
		}
		lin := nft.Renewals(compileRun(t, c0, -1), compileRun(t, c1, -1), c0, c1)
		mapped := nft.Renewals(compileRun(t, c0, 2), compileRun(t, c1, 2), c0, c1)
		for _, name := range lin {
			if !slices.Contains(mapped, name) {
				t.Fatalf("trial %d: %s renewed with rules, not with maps (%v vs %v)\n%s\n%s", trial, name, lin, mapped, acl.Format(c0), acl.Format(c1))
			}
		}
		seen += len(lin)
	}
	if seen < 50 {
		t.Fatalf("only %d renewals in all trials: the test proves little", seen)
	}
}

// A map's binary form (the digest's and the saved state's) gives back the
// same map, and a damaged one is refused, not half read.
func TestMapBinaryRoundTrip(t *testing.T) {
	seen := 0
	for trial := range 50 {
		u := mapUniverse{rand.New(rand.NewPCG(uint64(trial), 29))}
		rs := compileRun(t, u.config(20), 2)
		for _, s := range rs.Sets {
			if s.Map == nil {
				continue
			}
			b, err := s.Map.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			seen++
			var got nft.VMap
			if err := got.UnmarshalBinary(b); err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
			if got.Family != s.Map.Family || got.Fields != s.Map.Fields || !slices.Equal(got.Elems, s.Map.Elems) {
				t.Fatalf("%s: decoded %+v, want %+v", s.Name, got.Elems, s.Map.Elems)
			}
			for _, cut := range []int{1, len(b) / 2, len(b) - 1} {
				if err := new(nft.VMap).UnmarshalBinary(b[:cut]); err == nil {
					t.Errorf("%s: %d of %d bytes decoded without an error", s.Name, cut, len(b))
				}
			}
		}
	}
	if seen < 20 {
		t.Fatalf("only %d maps in all trials", seen)
	}
}

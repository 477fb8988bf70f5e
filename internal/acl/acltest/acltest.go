// Package acltest provides configurations for tests of the packages that
// use the acl model: the SLX example and valid random configurations that
// cover every option and form.
package acltest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// ExampleText is Format(Example()): the SLX example as running-config.
const ExampleText = `switch-attributes host-name device
!
connlimit existing-sessions reset
!
time-range office
 periodic weekdays 08:00 to 18:00
 absolute start 00:00 01 Jan 2026 end 23:59 31 Dec 2026
!
ip access-list extended check
 seq 5 remark ssh from the jump host
 seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3
 seq 20 permit ip any any
!
ipv6 access-list extended check6
 seq 10 permit tcp 2001:db8::/64 any eq 443 connlimit 10 per-prefix 64 refuse drop
!
interface management 0
 ip access-group check in
!
`

// Example returns the SLX example configuration (ExampleText).
func Example() *acl.Config {
	c := acl.New()
	must(c.SetHostname("device"))
	c.ExistingSessions = acl.Reset
	_, err := c.EnsureTimeRange("office")
	must(err)
	must(c.AddPeriodic("office", acl.Periodic{Days: acl.Weekdays, Start: 8 * 60, End: 18 * 60}))
	must(c.SetAbsolute("office", &acl.Absolute{
		Start: &acl.DateTime{Year: 2026, Month: 1, Day: 1},
		End:   &acl.DateTime{Year: 2026, Month: 12, Day: 31, Hour: 23, Minute: 59},
	}))
	mustACL(c, acl.IPv4, "check")
	must(c.AddEntry(acl.IPv4, "check", &acl.Entry{Seq: 5, Action: acl.Remark, Remark: "ssh from the jump host"}))
	must(c.AddEntry(acl.IPv4, "check", &acl.Entry{
		Seq:        10,
		Action:     acl.Permit,
		Proto:      acl.ProtoTCP,
		Src:        acl.NewHostAddr(netip.MustParseAddr("10.24.12.107")),
		Dst:        acl.NewHostAddr(netip.MustParseAddr("10.24.12.129")),
		DstPort:    acl.PortMatch{Op: acl.PortEq, Lo: 22},
		Connlimits: []acl.Connlimit{{N: 3}},
	}))
	must(c.AddEntry(acl.IPv4, "check", &acl.Entry{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny}))
	mustACL(c, acl.IPv6, "check6")
	must(c.AddEntry(acl.IPv6, "check6", &acl.Entry{
		Action:     acl.Permit,
		Proto:      acl.ProtoTCP,
		Src:        acl.NewPrefixAddr(netip.MustParsePrefix("2001:db8::/64")),
		DstPort:    acl.PortMatch{Op: acl.PortEq, Lo: 443},
		Connlimits: []acl.Connlimit{{N: 10, Key: acl.PerPrefix, PrefixLen: 64}},
		Refuse:     acl.Refuse{Kind: acl.RefuseDrop},
	}))
	must(c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "check"))
	return c
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func mustACL(c *acl.Config, f acl.Family, name string) {
	_, err := c.EnsureACL(f, name)
	must(err)
}

// Random returns a valid configuration drawn from r. Over many draws it
// covers every entry option and key kind, every address and port form, both
// families, remarks, refuse messages with quotes and backslashes, time
// ranges, all interface kinds, and empty blocks. It panics if what it built
// does not pass acl.Validate (a bug in the model or here).
func Random(r *rand.Rand) *acl.Config {
	g := &gen{r: r, c: acl.New()}
	if g.chance(2) {
		must(g.c.SetHostname(g.pick("device", "sw-1", "core.example", "r1_lab")))
	}
	if g.chance(3) {
		g.c.ExistingSessions = acl.Reset
	}
	for n := g.r.IntN(3); n > 0; n-- {
		g.timeRange()
	}
	for n := g.r.IntN(5); n > 0; n-- {
		g.acl()
	}
	for n := g.r.IntN(4); n > 0; n-- {
		g.iface()
	}
	if err := acl.Validate(g.c); err != nil {
		panic(fmt.Sprintf("acltest.Random built an invalid config: %v\n%s", err, acl.Format(g.c)))
	}
	return g.c
}

type gen struct {
	r *rand.Rand
	c *acl.Config
}

// chance is true one time in n.
func (g *gen) chance(n int) bool { return g.r.IntN(n) == 0 }

func (g *gen) pick(s ...string) string { return s[g.r.IntN(len(s))] }

func (g *gen) name(prefix string) string {
	return prefix + g.pick("", "-a", "_b", ".c", "1", "X") + fmt.Sprint(g.r.IntN(100))
}

func (g *gen) timeRange() {
	name := g.name("tr")
	_, err := g.c.EnsureTimeRange(name)
	must(err)
	for n := g.r.IntN(3); n > 0; n-- {
		p := acl.Periodic{Days: acl.DaySpec(g.r.IntN(int(acl.Sunday) + 1)), Start: g.r.IntN(1440), End: g.r.IntN(1440)}
		if p.Start != p.End {
			_ = g.c.AddPeriodic(name, p) // a duplicate is refused; fine
		}
	}
	if g.chance(2) {
		a := &acl.Absolute{Start: g.dateTime(2020)}
		if g.chance(2) {
			a.End = g.dateTime(2030) // always after a start in 2020-2029
		}
		if a.End != nil && g.chance(3) {
			a.Start = nil
		}
		must(g.c.SetAbsolute(name, a))
	}
}

func (g *gen) dateTime(base int) *acl.DateTime {
	return &acl.DateTime{
		Year: base + g.r.IntN(10), Month: 1 + g.r.IntN(12), Day: 1 + g.r.IntN(28),
		Hour: g.r.IntN(24), Minute: g.r.IntN(60),
	}
}

func (g *gen) acl() {
	f := acl.Family(g.r.IntN(2))
	name := g.name("acl")
	_, err := g.c.EnsureACL(f, name)
	must(err)
	for n := g.r.IntN(9); n > 0; n-- {
		e := g.entry(f)
		if g.chance(3) {
			e.Seq = 1 + g.r.IntN(acl.MaxSeq)
		}
		_ = g.c.AddEntry(f, name, e) // duplicates and seq clashes are refused
	}
	if g.chance(5) {
		a := g.c.ACL(f, name)
		if len(a.Entries) > 0 {
			must(g.c.Resequence(f, name, 1+g.r.IntN(50), 1+g.r.IntN(20)))
		}
	}
}

func (g *gen) entry(f acl.Family) *acl.Entry {
	if g.chance(8) {
		return &acl.Entry{Action: acl.Remark, Remark: g.text(false)}
	}
	e := &acl.Entry{Action: acl.Action(g.r.IntN(3))}
	e.Proto = g.proto(f)
	e.Src = g.addr(f)
	e.Dst = g.addr(f)
	if acl.HasPorts(e.Proto) {
		if g.chance(4) {
			e.SrcPort = g.ports()
		}
		e.DstPort = g.ports()
	}
	if e.Action != acl.HardDrop {
		g.limits(f, e)
		g.options(e)
	}
	e.Log = g.chance(4)
	e.Count = g.chance(6)
	if g.chance(8) {
		if g.chance(2) {
			e.Owner = &acl.Owner{User: g.pick("www-data", "alice", "svc_backup", "_apt", "build$")}
		} else {
			e.Owner = &acl.Owner{UID: g.r.IntN(70000)}
		}
	}
	return e
}

func (g *gen) proto(f acl.Family) int {
	switch g.r.IntN(8) {
	case 0, 1:
		return acl.ProtoAny
	case 2, 3:
		return acl.ProtoTCP
	case 4:
		return acl.ProtoUDP
	case 5:
		return acl.ProtoSCTP
	case 6:
		p, _ := acl.ProtoByName(f, "icmp")
		return p
	}
	return g.r.IntN(256)
}

func (g *gen) addr(f acl.Family) acl.Addr {
	bits := f.Bits()
	raw := make([]byte, bits/8)
	for i := range raw {
		raw[i] = byte(g.r.UintN(256))
	}
	a, _ := netip.AddrFromSlice(raw)
	switch g.r.IntN(5) {
	case 0:
		return acl.AnyAddr
	case 1:
		return acl.NewHostAddr(a)
	case 2, 3:
		return acl.NewPrefixAddr(netip.PrefixFrom(a, 1+g.r.IntN(bits)))
	}
	// A non-contiguous wildcard: random bytes with at least one hole.
	w := make([]byte, bits/8)
	w[len(w)-1] = 0xff
	w[0] = byte(g.r.UintN(256)) | 0x01
	w[len(w)/2] = 0x0f
	wa, _ := netip.AddrFromSlice(w)
	out, err := acl.NewWildcardAddr(a, wa)
	must(err)
	return out
}

func (g *gen) ports() acl.PortMatch {
	p := uint16(1 + g.r.IntN(65534))
	switch g.r.IntN(6) {
	case 0:
		return acl.PortMatch{}
	case 1:
		return acl.PortMatch{Op: acl.PortEq, Lo: p}
	case 2:
		return acl.PortMatch{Op: acl.PortNeq, Lo: p}
	case 3:
		return acl.PortMatch{Op: acl.PortLt, Lo: p}
	case 4:
		return acl.PortMatch{Op: acl.PortGt, Lo: p}
	}
	q := uint16(1 + g.r.IntN(65534))
	return acl.PortMatch{Op: acl.PortRange, Lo: min(p, q), Hi: max(p, q)}
}

func (g *gen) limits(f acl.Family, e *acl.Entry) {
	if g.chance(2) {
		l := &acl.Connlimit{N: g.r.IntN(100), Key: acl.KeyKind(g.r.IntN(4))}
		if l.Key == acl.PerPrefix {
			l.PrefixLen = 1 + g.r.IntN(f.Bits())
		}
		e.Connlimits = []acl.Connlimit{*l}
		if k, _ := l.LimitKey(f); k != acl.Total && g.chance(4) {
			e.Connlimits = append(e.Connlimits, acl.Connlimit{N: g.r.IntN(1000), Key: acl.Total})
		}
		acl.SortConnlimits(e.Connlimits)
	}
	if g.chance(4) {
		rt := &acl.Rate{N: 1 + g.r.IntN(1000), Per: acl.Period(g.r.IntN(4))}
		if g.chance(2) {
			rt.Burst = 1 + g.r.IntN(50)
		}
		if g.chance(2) {
			rt.Key = acl.Total
		}
		e.Rate = rt
	}
	if g.chance(5) {
		e.Quota = &acl.Quota{
			N: uint64(1 + g.r.IntN(5000)), Unit: acl.ByteUnit(g.r.IntN(4)),
			Per: acl.Period(1 + g.r.IntN(3)), PerSource: g.chance(2),
		}
	}
	if e.Limited() && g.chance(3) {
		e.BlockFor = &acl.BlockFor{Seconds: 1 + g.r.IntN(acl.MaxBlockFor), Flush: g.chance(2)}
	}
}

func (g *gen) options(e *acl.Entry) {
	if len(g.c.TimeRanges) > 0 && g.chance(4) {
		e.TimeRange = g.c.TimeRanges[g.r.IntN(len(g.c.TimeRanges))].Name
	}
	if g.chance(6) {
		e.LoadLimit = &acl.LoadLimit{Hundredths: acl.MinLoadLimit + g.r.IntN(acl.MaxLoadLimit)}
	}
	switch g.r.IntN(6) {
	case 0:
		e.Refuse = acl.Refuse{Kind: acl.RefuseDrop}
	case 1:
		e.Refuse = acl.Refuse{Kind: acl.RefuseReset}
	case 2:
		if e.Proto == acl.ProtoTCP {
			e.Refuse = acl.Refuse{Kind: acl.RefuseMessage, Message: g.text(true)}
		}
	}
}

// text returns remark or message text; messages may hold quotes and
// backslashes.
func (g *gen) text(message bool) string {
	words := []string{"ssh", "from", "the", "jump", "host", "too", "many", "sessions,", "try", "later.", "ünïcode", "x-1", "#5", "a:b"}
	if message {
		words = append(words, `"quoted"`, `back\slash`, `\"`, "  ")
	}
	var w []string
	for n := 1 + g.r.IntN(6); n > 0; n-- {
		w = append(w, g.pick(words...))
	}
	s := strings.Join(w, " ")
	if !message {
		s = strings.TrimSpace(s)
	}
	return s
}

func (g *gen) iface() {
	var kind acl.IfKind
	var name string
	switch g.r.IntN(3) {
	case 0:
		kind, name = acl.IfManagement, "0"
	case 1:
		kind, name = acl.IfEthernet, fmt.Sprintf("%d/%d", g.r.IntN(4), 1+g.r.IntN(48))
	default:
		kind, name = acl.IfLinux, g.pick("eth0", "eth1", "ens3", "veth-a", "br0.10", "wg0")
	}
	_, err := g.c.EnsureInterface(kind, name)
	must(err)
	for _, f := range []acl.Family{acl.IPv4, acl.IPv6} {
		var names []string
		for _, a := range g.c.ACLs {
			if a.Family == f {
				names = append(names, a.Name)
			}
		}
		if len(names) == 0 {
			continue
		}
		for _, d := range []acl.Direction{acl.In, acl.Out} {
			if g.chance(2) {
				// An `in` binding of a list with user/uid entries is refused; fine.
				_ = g.c.SetAccessGroup(kind, name, f, d, g.pick(names...))
			}
		}
	}
}

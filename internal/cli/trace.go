package cli

import (
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// packet-tracer (issue 14): which entry, which count, which verdict, for a
// connection that has not happened yet. The shell declares the command
// (exec table) and prints the answer (writeTrace); the backend evaluates
// (acl.TracePacket) with its live state (the agent: the same session
// counts as `show access-list sessions`, blocked sources, the load, the
// compiled rules for `detail`).

// TraceArgs is the argument of OpPacketTrace: a connection's first packet
// on an interface in a direction, and optionally the ACL to evaluate as
// if it were bound there (`access-list NAME`).
type TraceArgs struct {
	Kind   acl.IfKind    `json:"kind"`
	Name   string        `json:"name"`
	Dir    acl.Direction `json:"dir"`
	ACL    string        `json:"acl,omitempty"`
	Packet acl.Packet    `json:"packet"`
	Routed bool          `json:"routed,omitempty"` // through the host, not to or from it
	Detail bool          `json:"detail,omitempty"`
}

// Family is the address family of the traced packet.
func (a TraceArgs) Family() acl.Family {
	if a.Packet.Src.Is4() {
		return acl.IPv4
	}
	return acl.IPv6
}

// PacketTrace is the answer of OpPacketTrace.
type PacketTrace struct {
	Interface string        // as configured: "management 0", "ethernet 0/1", "eth0"
	Routed    bool          // through the host
	Linux     string        // the Linux interface it means ("" : unknown)
	Dir       acl.Direction // in or out
	Family    acl.Family
	ACL       string // the ACL evaluated; "" : none is applied there
	AsIfBound bool   // evaluated as if bound (`access-list NAME`)
	// Counts says where the key counts come from: "kernel" (the agent's
	// session side, as `show access-list sessions`) or a reason there are
	// none.
	Counts string
	Trace  acl.Trace
	Rules  []string // detail: the nft rules the connection traverses
}

// TraceConfig returns the configuration a trace evaluates (c itself, or a
// copy with the ACL of `access-list NAME` bound to the interface) and the
// ACL; a nil ACL means none is applied there. Errors are the shell's.
func TraceConfig(c *acl.Config, a TraceArgs) (*acl.Config, *acl.ACL, bool, error) {
	if err := checkPacket(a); err != nil {
		return nil, nil, false, err
	}
	f := a.Family()
	bound := ""
	if i := c.Interface(a.Kind, a.Name); i != nil {
		bound = i.Groups[f][a.Dir]
	}
	if a.ACL == "" || a.ACL == bound {
		if bound == "" {
			return c, nil, false, nil
		}
		return c, c.ACL(f, bound), false, nil
	}
	if c.ACL(f, a.ACL) == nil {
		return nil, nil, false, fmt.Errorf("%% Error: %s access-list %q does not exist", f, a.ACL)
	}
	n := c.Clone()
	if err := n.SetAccessGroup(a.Kind, a.Name, f, a.Dir, a.ACL); err != nil {
		return nil, nil, false, fmt.Errorf("%% Error: %v", err)
	}
	return n, n.ACL(f, a.ACL), true, nil
}

func checkPacket(a TraceArgs) error {
	p := a.Packet
	switch {
	case !p.Src.IsValid() || !p.Dst.IsValid():
		return fmt.Errorf("%% Error: packet-tracer needs a source and a destination address")
	case p.Src.Is4() != p.Dst.Is4():
		return fmt.Errorf("%% Error: source %s and destination %s are of different families", p.Src, p.Dst)
	case a.Dir != acl.In && a.Dir != acl.Out:
		return fmt.Errorf("%% Error: unknown direction %d", int(a.Dir))
	}
	return nil
}

// RunTrace evaluates a trace on configuration c (TraceConfig's) with the
// backend's state st; counts says where st's key counts come from.
func RunTrace(c *acl.Config, l *acl.ACL, asIf bool, a TraceArgs, st acl.TraceState, counts string) PacketTrace {
	t := PacketTrace{Interface: acl.InterfaceLabel(a.Kind, a.Name), Routed: a.Routed, Dir: a.Dir, Family: a.Family(), AsIfBound: asIf, Counts: counts}
	if l == nil {
		t.Trace = acl.Trace{Admit: true, Reason: "no access-group"}
		return t
	}
	st.Dir, st.Routed = a.Dir, a.Routed
	t.ACL = l.Name
	t.Trace = acl.TracePacket(c, l, a.Packet, st)
	return t
}

// traceArgs is what the packet-tracer command line fills.
type traceArgs struct {
	TraceArgs
	icmp  bool // icmp: the protocol number depends on the family
	proto int
}

// packetTracerCmd is `packet-tracer {input|output} IF PROTO SRC SPORT DST
// DPORT [access-list NAME] [routed] [detail]`, as on Cisco ASA: tcp/udp/sctp with
// ports, `icmp SRC TYPE CODE DST` (type and code are not matched: entries
// have no ICMP type match), `rawip PROTO SRC DST`; the options in any order.
func packetTracerCmd() *command {
	set := func(f func(p *acl.Packet)) func(a *traceArgs) { return func(a *traceArgs) { f(&a.Packet) } }
	src := anyAddrArg("Source address", func(a *traceArgs, x netip.Addr) { a.Packet.Src = x })
	dst := anyAddrArg("Destination address", func(a *traceArgs, x netip.Addr) { a.Packet.Dst = x })
	sport := portArg(func(a *traceArgs, p uint16) { a.Packet.SPort = p })
	dport := portArg(func(a *traceArgs, p uint16) { a.Packet.DPort = p })
	ported := func(word, help string, proto uint8) node {
		return seq(kwSet(word, help, set(func(p *acl.Packet) { p.Proto = proto })), src, sport, dst, dport)
	}
	icmpNum := func(help string) node { return intArg(0, 255, help, func(*traceArgs, int) {}) }
	return execCmd(seq(kw("packet-tracer", "Trace a connection through the access lists"),
		alt(kwSet("input", "A connection arriving on an interface (in)", func(a *traceArgs) { a.Dir = acl.In }),
			kwSet("output", "A connection leaving through an interface (out)", func(a *traceArgs) { a.Dir = acl.Out })),
		ifNode(func(a *traceArgs, k acl.IfKind, n string) { a.Kind, a.Name = k, n }),
		alt(ported("tcp", "TCP connection", acl.ProtoTCP),
			ported("udp", "UDP flow", acl.ProtoUDP),
			ported("sctp", "SCTP association", acl.ProtoSCTP),
			seq(kwSet("icmp", "ICMP (ICMPv6 for IPv6 addresses)", func(a *traceArgs) { a.icmp = true }),
				src, icmpNum("ICMP type"), icmpNum("ICMP code"), dst),
			seq(kw("rawip", "Another IP protocol"),
				intArg(0, 255, "IP protocol number", func(a *traceArgs, n int) { a.proto = n; a.Packet.Proto = uint8(n) }),
				src, dst)),
		anyOrder(
			seq(kw("access-list", "Evaluate an access list as if it were applied there"),
				wordArg(aclNames, "Access list name", func(a *traceArgs, s string) { a.ACL = s })),
			kwSet("routed", "Routed through the host (not to or from it)", func(a *traceArgs) { a.Routed = true }),
			kwSet("detail", "Add the nftables rules the connection traverses", func(a *traceArgs) { a.Detail = true })),
		pipeNode()), cmdPacketTracer)
}

func cmdPacketTracer(s *Session, w io.Writer, a *traceArgs) error {
	if a.icmp {
		a.Packet.Proto = acl.ProtoICMP
		if a.Packet.Src.Is6() && !a.Packet.Src.Is4In6() {
			a.Packet.Proto = acl.ProtoICMPv6
		}
	}
	a.Packet.Src, a.Packet.Dst = a.Packet.Src.Unmap(), a.Packet.Dst.Unmap()
	if err := checkPacket(a.TraceArgs); err != nil {
		return err
	}
	t, err := Call(s.b, OpPacketTrace, a.TraceArgs)
	if err != nil {
		return err
	}
	writeTrace(w, &t)
	return nil
}

// writeTrace prints a trace one phase per group of lines, as ASA's
// packet-tracer does, and as `show` output is read.
func writeTrace(w io.Writer, t *PacketTrace) {
	phase := 0
	head := func(typ, result string) {
		phase++
		fmt.Fprintf(w, "Phase: %d\nType: %s\nResult: %s\n", phase, typ, result)
	}
	ifc := t.Interface
	if t.Linux != "" && t.Linux != t.Interface {
		ifc += " (" + t.Linux + ")"
	}
	group := fmt.Sprintf("%s access-group %s %s", t.Family, t.ACL, t.Dir)
	if t.Routed {
		ifc += ", routed"
	}
	switch {
	case t.ACL == "":
		head("ACCESS-GROUP", fmt.Sprintf("no %s access-group %s on %s: not filtered", t.Family, t.Dir, ifc))
	case t.AsIfBound:
		head("ACCESS-GROUP", fmt.Sprintf("%s on %s (as if applied: it is not)", group, ifc))
	default:
		head("ACCESS-GROUP", fmt.Sprintf("%s on %s", group, ifc))
	}
	if t.ACL != "" {
		fmt.Fprintln(w)
		writeEntries(w, head, t)
		if len(t.Trace.Limits) > 0 {
			fmt.Fprintln(w)
			writeLimits(w, head, t)
		}
	}
	if len(t.Rules) > 0 {
		fmt.Fprintln(w)
		if len(t.Rules) == 1 && strings.HasPrefix(t.Rules[0], "(") {
			head("NFTABLES", "not available")
		} else {
			head("NFTABLES", fmt.Sprintf("%d rules traversed", len(t.Rules)))
		}
		for _, r := range t.Rules {
			fmt.Fprintf(w, " %s\n", r)
		}
	}
	fmt.Fprintln(w)
	writeVerdict(w, t, ifc)
}

func writeEntries(w io.Writer, head func(string, string), t *PacketTrace) {
	tr := &t.Trace
	switch {
	case tr.Reason == "blocked":
		head("ACCESS-LIST", fmt.Sprintf("not evaluated: the source is blocked (by the block-for of seq %d)", tr.Seq))
	case tr.Seq != 0:
		head("ACCESS-LIST", fmt.Sprintf("seq %d decides", tr.Seq))
	default:
		head("ACCESS-LIST", "no entry matches: implicit deny")
	}
	for _, s := range tr.Steps {
		why := s.Result.String()
		if s.Why != "" {
			why += " (" + s.Why + ")"
		}
		fmt.Fprintf(w, " %s\n   %s\n", s.Entry, why)
	}
	if tr.Seq == 0 && tr.Reason == "implicit deny" {
		fmt.Fprintf(w, " implicit deny %s any any\n   match\n", t.Family)
	}
}

func writeLimits(w io.Writer, head func(string, string), t *PacketTrace) {
	tr := &t.Trace
	refusing := "under every limit"
	for _, l := range tr.Limits {
		if l.Over {
			refusing = l.Kind + " refuses"
			break
		}
	}
	head("LIMITS", refusing)
	fmt.Fprintf(w, " counts: %s\n", t.Counts)
	for _, l := range tr.Limits {
		var b strings.Builder
		fmt.Fprintf(&b, " seq %d %s", l.Seq, l.Kind)
		if l.Kind == "connlimit" {
			fmt.Fprintf(&b, " %d %s, key %s: %d/%d", l.Limit, l.By, l.Key, l.Sessions, l.Limit)
		} else if l.Key != "" {
			fmt.Fprintf(&b, ", key %s", l.Key)
		}
		fmt.Fprintf(w, "%s\n   %s\n", b.String(), l.Note)
	}
}

func writeVerdict(w io.Writer, t *PacketTrace, ifc string) {
	tr := &t.Trace
	side := "input-interface"
	if t.Dir == acl.Out {
		side = "output-interface"
	}
	fmt.Fprintf(w, "Result:\n%s: %s\n", side, ifc)
	if tr.Admit {
		fmt.Fprintln(w, "Action: admit")
	} else {
		fmt.Fprintf(w, "Action: refuse (%s)\n", tr.Refusal)
	}
	switch {
	case tr.Seq != 0:
		fmt.Fprintf(w, "Reason: %s, seq %d\n", tr.Reason, tr.Seq)
	default:
		fmt.Fprintf(w, "Reason: %s\n", tr.Reason)
	}
}

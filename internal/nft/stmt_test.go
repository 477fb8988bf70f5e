package nft

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// The expected expressions below are what `nft --debug=netlink -f` prints
// for each text with nft 1.0.6 (byte order as sent: network order for
// headers, host order, little-endian here, for ct state).

func meta(k expr.MetaKey) *expr.Meta { return &expr.Meta{Key: k, Register: 1} }

func cmpEq(b ...byte) *expr.Cmp { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }

func nh(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: n}
}

func th(off, n uint32) *expr.Payload {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: off, Len: n}
}

func and(mask ...byte) *expr.Bitwise {
	return &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(mask)), Mask: mask, Xor: make([]byte, len(mask))}
}

func pfx(s string) acl.Addr {
	return acl.Addr{Kind: acl.AddrPrefix, Prefix: netip.MustParsePrefix(s)}
}

var ipv4Dep = []expr.Any{meta(expr.MetaKeyNFPROTO), cmpEq(2)}

func TestStmtTextAndExprs(t *testing.T) {
	v6mask64 := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}
	tests := []struct {
		stmt  Stmt
		text  string
		exprs []expr.Any
	}{
		{&Iface{Name: "eth0"}, `iifname "eth0"`,
			[]expr.Any{meta(expr.MetaKeyIIFNAME), cmpEq('e', 't', 'h', '0', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)}},
		{&Iface{Out: true, Name: "eth1"}, `oifname "eth1"`,
			[]expr.Any{meta(expr.MetaKeyOIFNAME), cmpEq('e', 't', 'h', '1', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)}},
		{&NFProto{Family: acl.IPv6}, "meta nfproto ipv6", []expr.Any{meta(expr.MetaKeyNFPROTO), cmpEq(10)}},
		{&L4Proto{Proto: 58}, "meta l4proto ipv6-icmp", []expr.Any{meta(expr.MetaKeyL4PROTO), cmpEq(58)}},
		{&L4Proto{Proto: 253}, "meta l4proto 253", []expr.Any{meta(expr.MetaKeyL4PROTO), cmpEq(253)}},
		{&CtState{States: CtEstablished | CtRelated}, "ct state established,related", []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATE}, and(6, 0, 0, 0),
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}}}},
		{&Addr{Match: pfx("10.24.12.107/32"), Dep: true}, "ip saddr 10.24.12.107",
			append(ipv4Dep[:2:2], nh(12, 4), cmpEq(10, 24, 12, 107))},
		{&Addr{Dst: true, Match: pfx("10.0.0.0/24")}, "ip daddr 10.0.0.0/24",
			[]expr.Any{nh(16, 3), cmpEq(10, 0, 0)}},
		{&Addr{Match: pfx("10.1.0.0/20")}, "ip saddr 10.1.0.0/20",
			[]expr.Any{nh(12, 4), and(255, 255, 240, 0), cmpEq(10, 1, 0, 0)}},
		{&Addr{Match: acl.Addr{Kind: acl.AddrWildcard, Base: netip.MustParseAddr("0.0.0.5"),
			Wildcard: netip.MustParseAddr("255.255.255.0")}}, "ip saddr & 0.0.0.255 == 0.0.0.5",
			[]expr.Any{nh(12, 4), and(0, 0, 0, 255), cmpEq(0, 0, 0, 5)}},
		{&Addr{Family: acl.IPv6, Match: pfx("2001:db8::/64"), Dep: true}, "ip6 saddr 2001:db8::/64",
			[]expr.Any{meta(expr.MetaKeyNFPROTO), cmpEq(10), nh(8, 8), cmpEq(0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0)}},
		{&Ports{Proto: 6, Dst: acl.PortMatch{Op: acl.PortEq, Lo: 22}, Dep: true}, "tcp dport 22",
			[]expr.Any{meta(expr.MetaKeyL4PROTO), cmpEq(6), th(2, 2), cmpEq(0, 22)}},
		{&Ports{Proto: 17, Src: acl.PortMatch{Op: acl.PortEq, Lo: 5}, Dst: acl.PortMatch{Op: acl.PortEq, Lo: 6}},
			"udp sport 5 udp dport 6", []expr.Any{th(0, 4), cmpEq(0, 5, 0, 6)}},
		{&Ports{Proto: 6, Src: acl.PortMatch{Op: acl.PortNeq, Lo: 5}, Dst: acl.PortMatch{Op: acl.PortLt, Lo: 1024}},
			"tcp sport != 5 tcp dport 0-1023", []expr.Any{th(0, 2),
				&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 5}}, th(2, 2),
				&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{0, 0}},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{3, 0xff}}}},
		{&Ports{Proto: 132, Dst: acl.PortMatch{Op: acl.PortGt, Lo: 1023}}, "sctp dport 1024-65535",
			[]expr.Any{th(2, 2), &expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{4, 0}},
				&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{0xff, 0xff}}}},
		{&Ports{Proto: 6, Dst: acl.PortMatch{Op: acl.PortRange, Lo: 80, Hi: 80}}, "tcp dport 80",
			[]expr.Any{th(2, 2), cmpEq(0, 80)}},
		{&ConnlimitAdd{Set: "s", Key: Key{Kind: acl.PerSource}, Over: 3}, "add @s { ip saddr ct count over 3 }",
			[]expr.Any{nh(12, 4), &expr.Dynset{SrcRegKey: 1, SetName: "s", Operation: 0,
				Exprs: []expr.Any{&expr.Connlimit{Count: 3, Flags: 1}}}}},
		{&ConnlimitAdd{Set: "p", Key: Key{Kind: acl.PerPrefix, PrefixLen: 24}, Over: 2, Dep: true},
			"add @p { ip saddr & 255.255.255.0 ct count over 2 }",
			append(ipv4Dep[:2:2], nh(12, 4), and(255, 255, 255, 0), &expr.Dynset{SrcRegKey: 1, SetName: "p",
				Exprs: []expr.Any{&expr.Connlimit{Count: 2, Flags: 1}}})},
		{&ConnlimitAdd{Set: "p6", Key: Key{Family: acl.IPv6, Kind: acl.PerPrefix, PrefixLen: 64}, Over: 2},
			"add @p6 { ip6 saddr & ffff:ffff:ffff:ffff:: ct count over 2 }",
			[]expr.Any{nh(8, 16), and(v6mask64...), &expr.Dynset{SrcRegKey: 1, SetName: "p6",
				Exprs: []expr.Any{&expr.Connlimit{Count: 2, Flags: 1}}}}},
		{&ConnlimitAdd{Set: "d", Key: Key{Kind: acl.PerDestination}, Over: 1}, "add @d { ip daddr ct count over 1 }",
			[]expr.Any{nh(16, 4), &expr.Dynset{SrcRegKey: 1, SetName: "d",
				Exprs: []expr.Any{&expr.Connlimit{Count: 1, Flags: 1}}}}},
		{&ConnlimitAdd{Set: "g", Key: Key{Kind: acl.Total}, Over: 100, Dep: true}, "add @g { meta nfproto ct count over 100 }",
			[]expr.Any{meta(expr.MetaKeyNFPROTO), &expr.Dynset{SrcRegKey: 1, SetName: "g",
				Exprs: []expr.Any{&expr.Connlimit{Count: 100, Flags: 1}}}}},
		{&SetLookup{Set: "s", Key: Key{Kind: acl.PerSource}, Invert: true}, "ip saddr != @s",
			[]expr.Any{nh(12, 4), &expr.Lookup{SourceRegister: 1, SetName: "s", Invert: true}}},
		{&SetLookup{Set: "s", Key: Key{Kind: acl.PerSource}}, "ip saddr @s",
			[]expr.Any{nh(12, 4), &expr.Lookup{SourceRegister: 1, SetName: "s"}}},
		{&CounterRef{Name: "c"}, `counter name "c"`, []expr.Any{&expr.Objref{Type: 1, Name: "c"}}},
		{&Reject{TCPReset: true}, "reject with tcp reset", []expr.Any{&expr.Reject{Type: 1, Code: 0}}},
		{&Reject{}, "reject with icmpx admin-prohibited", []expr.Any{&expr.Reject{Type: 2, Code: 3}}},
		{&Verdict{Kind: expr.VerdictReturn}, "return", []expr.Any{&expr.Verdict{Kind: expr.VerdictReturn}}},
		{&Verdict{Kind: expr.VerdictAccept}, "accept", []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}},
		{&Verdict{Kind: expr.VerdictDrop}, "drop", []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}},
		{&Verdict{Kind: expr.VerdictJump, Chain: "refuse"}, "jump refuse",
			[]expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: "refuse"}}},
	}
	for _, tt := range tests {
		if got := tt.stmt.String(); got != tt.text {
			t.Errorf("String() = %q, want %q", got, tt.text)
		}
		if d := cmp.Diff(tt.exprs, tt.stmt.Exprs()); d != "" {
			t.Errorf("%s: Exprs (-want +got):\n%s", tt.text, d)
		}
	}
}

// addrString must print IPv6 addresses as glibc's inet_ntop does (what nft
// uses); the expectations come from Python's socket.inet_ntop on glibc.
func TestAddrStringLikeGlibc(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:ffff":     "::255.255.255.255",
		"::ffff:1.2.3.4":  "::ffff:1.2.3.4",
		"::ffff:0:0":      "::ffff:0.0.0.0",
		"::1.2.3.4":       "::1.2.3.4",
		"::1":             "::1",
		"::":              "::",
		"::ff00":          "::ff00",
		"2001:db8::":      "2001:db8::",
		"1:0:0:1:0:0:0:1": "1:0:0:1::1",
		"1:0:0:0:1:0:0:1": "1::1:0:0:1",
		"0:0:0:0:0:1:0:0": "::1:0:0",
		"1:2:3:4:5:6:7:8": "1:2:3:4:5:6:7:8",
		"1::ffff:0:0:0":   "1::ffff:0:0:0",
		"10.1.2.3":        "10.1.2.3",
	} {
		if got := addrString(netip.MustParseAddr(in)); got != want {
			t.Errorf("addrString(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestOptionStmtTextAndExprs(t *testing.T) {
	lim := func(rate uint64, unit expr.LimitTime, burst uint32) *expr.Limit {
		return &expr.Limit{Type: expr.LimitTypePkts, Rate: rate, Over: true, Unit: unit, Burst: burst}
	}
	tests := []struct {
		stmt  Stmt
		text  string
		exprs []expr.Any
	}{
		{&LogGroup{Prefix: "deny acl=a dir=in seq=10 ", Group: 2}, `log prefix "deny acl=a dir=in seq=10 " group 2`,
			[]expr.Any{&expr.Log{Key: 1<<2 | 1<<1, Group: 2, Data: []byte("deny acl=a dir=in seq=10 ")}}},
		{&RateUnder{RateOver{Rate: 10, Per: acl.Second, Burst: 20}}, "limit rate 10/second burst 20 packets",
			[]expr.Any{&expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeSecond, Burst: 20}}},
		{&MarkSet{Mark: 0x534c0100}, "meta mark set 0x534c0100",
			[]expr.Any{&expr.Immediate{Register: 1, Data: []byte{0, 1, 0x4c, 0x53}}, &expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: 1}}},
		{&MarkEq{Mark: 0x534c0101}, "meta mark 0x534c0101",
			[]expr.Any{meta(expr.MetaKeyMARK), cmpEq(1, 1, 0x4c, 0x53)}},
		{&Redirect{Port: 4421}, "redirect to :4421",
			[]expr.Any{&expr.Immediate{Register: 1, Data: []byte{0x11, 0x45}}, &expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: 2}}},
		{&RateOver{Rate: 10, Per: acl.Second}, "limit rate over 10/second",
			[]expr.Any{lim(10, expr.LimitTimeSecond, 5)}},
		{&RateOver{Rate: 10, Per: acl.Minute, Burst: 20}, "limit rate over 10/minute burst 20 packets",
			[]expr.Any{lim(10, expr.LimitTimeMinute, 20)}},
		{&RateUpdate{Set: "r", Key: Key{Kind: acl.PerSource}, Rate: RateOver{Rate: 3, Per: acl.Hour}, Dep: true},
			"update @r { ip saddr limit rate over 3/hour }",
			append(ipv4Dep[:2:2], nh(12, 4), &expr.Dynset{SrcRegKey: 1, SetName: "r", Operation: 1,
				Exprs: []expr.Any{lim(3, expr.LimitTimeHour, 5)}})},
		{&SkUID{UID: 1000}, "meta skuid 1000",
			[]expr.Any{meta(expr.MetaKeySKUID), cmpEq(0xe8, 0x03, 0, 0)}},
	}
	for _, tt := range tests {
		if got := tt.stmt.String(); got != tt.text {
			t.Errorf("String() = %q, want %q", got, tt.text)
		}
		if d := cmp.Diff(tt.exprs, tt.stmt.Exprs()); d != "" {
			t.Errorf("%s: Exprs (-want +got):\n%s", tt.text, d)
		}
	}
}

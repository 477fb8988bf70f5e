package nft_test

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

func mustParse(t testing.TB, text string) *acl.Config {
	t.Helper()
	c, err := cli.ParseConfig(text)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	return c
}

func mustCompile(t *testing.T, text string) *nft.Ruleset {
	t.Helper()
	rs, err := nft.Compile(mustParse(t, text), goldenOptions)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return rs
}

func setNames(rs *nft.Ruleset) map[string]bool {
	m := map[string]bool{}
	for _, s := range rs.Sets {
		m[s.Name] = true
	}
	return m
}

func TestCompileDeterministic(t *testing.T) {
	for _, g := range loadGoldens(t) {
		again, err := nft.Compile(mustParse(t, readConf(t, g.confPath)), goldenOptions)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(g.rs, again) {
			t.Errorf("%s: two compilations differ", g.name)
		}
	}
}

// An unchanged limited entry keeps its set name when other entries change;
// a changed limit or key gets a new set.
func TestSetNamesFollowWhatElementsKeep(t *testing.T) {
	base := mustCompile(t, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit tcp any any eq 80 connlimit 5
interface eth0
 ip access-group check in
`)
	otherChanged := mustCompile(t, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit tcp any any eq 81 connlimit 7 per-destination
 seq 30 permit ip any any
interface eth0
 ip access-group check in
`)
	limitChanged := mustCompile(t, `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 4
interface eth0
 ip access-group check in
`)
	denySame := mustCompile(t, `ip access-list extended check
 seq 10 deny tcp any any eq 22 connlimit 4
interface eth0
 ip access-group check in
`)
	const s10 = "ip_check_in_10_src_3"
	if !setNames(base)[s10] || !setNames(otherChanged)[s10] {
		t.Errorf("seq 10 set %s missing: %v / %v", s10, setNames(base), setNames(otherChanged))
	}
	if setNames(limitChanged)[s10] {
		t.Errorf("a changed limit kept set %s", s10)
	}
	if !setNames(otherChanged)["ip_check_in_20_dst_7"] {
		t.Errorf("per-destination set missing: %v", setNames(otherChanged))
	}
	// deny connlimit 4 refuses over 3: its elements are the same as permit
	// connlimit 3's, so it may keep the set.
	if !setNames(denySame)[s10] {
		t.Errorf("deny connlimit 4 should use %s: %v", s10, setNames(denySame))
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, text string
		opt        nft.Options
		want       []string // substrings of the joined error, each an *acl.Error
	}{
		{"no mgmt", "ip access-list extended a\n permit ip any any\ninterface management 0\n ip access-group a in\n",
			nft.Options{}, []string{"interface management 0: no Linux interface is set for management 0"}},
		{"unmapped ethernet", "ip access-list extended a\n permit ip any any\ninterface ethernet 0/9\n ip access-group a in\n",
			goldenOptions, []string{"interface ethernet 0/9: no Linux interface is mapped to ethernet 0/9"}},
		{"same linux interface twice", "ip access-list extended a\n permit ip any any\ninterface ethernet 0/1\n ip access-group a in\ninterface eth1\n ip access-group a in\n",
			goldenOptions, []string{"interface eth1: interface ethernet 0/1 and interface eth1 are both Linux interface eth1"}},
		{"user without lookup", "ip access-list extended a\n permit tcp any any eq 22 user nobody\ninterface eth0\n ip access-group a out\n",
			goldenOptions, []string{"seq 10: user nobody: no user database"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := nft.Compile(mustParse(t, tt.text), tt.opt)
			if err == nil {
				t.Fatalf("no error; compiled:\n%s", rs)
			}
			var ae *acl.Error
			if !errors.As(err, &ae) {
				t.Errorf("error %v is not an *acl.Error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// The compiler refuses `refuse message` out even in a config that skipped
// acl's validation (which refuses it first): out, nothing is decided
// before NAT, and a mark alone would admit.
func TestCompileRefusesMessageOut(t *testing.T) {
	c := mustParse(t, "ip access-list extended a\n permit tcp any any eq 22 connlimit 1 refuse message \"busy\"\ninterface eth0\n ip access-group a in\n")
	g := &c.Interfaces[0].Groups[acl.IPv4]
	g[acl.In], g[acl.Out] = "", g[acl.In]
	_, err := nft.Compile(c, goldenOptions)
	if err == nil || !strings.Contains(err.Error(), "seq 10: refuse message only applies in") {
		t.Fatalf("Compile: %v, want refuse message only applies in", err)
	}
}

// Every rule of an ACL chain carries a comment that ParseComment reads back
// to its chain's ACL and direction, and comments are unique in each chain.
func TestRuleCommentsIdentifyRules(t *testing.T) {
	for _, g := range loadGoldens(t) {
		for _, ch := range g.rs.Chains {
			seen := map[string]bool{}
			for _, r := range ch.Rules {
				if r.Comment == "" || seen[r.Comment] {
					t.Errorf("%s: chain %s: empty or repeated comment %q", g.name, ch.Name, r.Comment)
				}
				seen[r.Comment] = true
				if ch.Hook != nil || ch.Name == nft.RefuseChain || strings.HasPrefix(ch.Name, nft.RefuseChain+"_message_") || ch.Name == nft.QuotaChain {
					continue
				}
				if _, isMap := r.Stmts[0].(*nft.MapLookup); isMap && len(r.Stmts) == 1 {
					if !strings.Contains(r.Comment, " map=") {
						t.Errorf("%s: chain %s: map lookup with comment %q", g.name, ch.Name, r.Comment)
					}
					continue
				}
				ref, _, ok := nft.ParseComment(r.Comment)
				if !ok || (nft.ChainName(ref.Family, ref.ACL, ref.Dir) != ch.Name && nft.BlockChainName(ref) != ch.Name &&
					nft.EntryChainName(ref) != ch.Name &&
					!strings.HasPrefix(ch.Name, nft.ChainName(ref.Family, ref.ACL, ref.Dir)+"_"+strconv.Itoa(ref.Seq)+"_")) {
					t.Errorf("%s: chain %s: comment %q parses to %+v, %v", g.name, ch.Name, r.Comment, ref, ok)
				}
			}
		}
	}
}

func TestParseCommentRoundTrip(t *testing.T) {
	for _, ref := range []nft.EntryRef{
		{Family: acl.IPv4, ACL: "check", Dir: acl.In, Seq: 10},
		{Family: acl.IPv6, ACL: "a-b.c_d", Dir: acl.Out, Seq: 65535},
		{Family: acl.IPv4, ACL: "x", Dir: acl.Out, Seq: 0},
	} {
		roles := []string{"", nft.RoleConnlimitFull, nft.RoleRate, nft.RolePermit, "layer4-full", nft.RoleDepth, nft.RoleReserved}
		if ref.Seq == 0 {
			roles = []string{"", nft.RolePermitND}
		}
		for _, role := range roles {
			c := nft.RuleComment(ref, role)
			got, gotRole, ok := nft.ParseComment(c)
			if !ok || got != ref || gotRole != role {
				t.Errorf("ParseComment(%q) = %+v %q %v", c, got, gotRole, ok)
			}
		}
	}
	if got, role, ok := nft.ParseComment("acl6=v dir=out implicit-permit-nd"); !ok || role != nft.RolePermitND || got.Seq != 0 || got.ACL != "v" {
		t.Errorf("implicit-permit-nd parses to %+v %q %v", got, role, ok)
	}
	for _, s := range []string{"established", "iif=eth0 acl=check", "acl=x dir=up seq=1", "acl=x dir=in seq=0", "acl=x dir=in implicit-deny full"} {
		if _, _, ok := nft.ParseComment(s); ok {
			t.Errorf("ParseComment(%q) accepted", s)
		}
	}
}

func TestLongNamesAreHashedAndDistinct(t *testing.T) {
	long := strings.Repeat("a", acl.MaxNameLen)
	other := strings.Repeat("a", acl.MaxNameLen-1) + "b"
	a := nft.ChainName(acl.IPv6, long, acl.Out)
	b := nft.ChainName(acl.IPv6, other, acl.Out)
	m1, r1 := nft.CounterNames(acl.IPv6, long, acl.Out, 65535)
	s := nft.ConnlimitSetName(acl.IPv6, long, acl.Out, 65535, &acl.Connlimit{N: 65535, Key: acl.PerPrefix, PrefixLen: 127}, 65535)
	l, d := nft.LayerSetName(s, 65534), nft.MemberSetName(s, 65534)
	for _, n := range []string{a, b, m1, r1, s, l, d} {
		if len(n) > nft.MaxNameLen {
			t.Errorf("%q is longer than %d", n, nft.MaxNameLen)
		}
	}
	if a == b || m1 == r1 {
		t.Errorf("hashed names collide: %q %q %q %q", a, b, m1, r1)
	}
	if got := nft.ChainName(acl.IPv4, "check", acl.In); got != "ip_check_in" {
		t.Errorf("short names stay readable: got %q", got)
	}
}

func readConf(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// BenchmarkCompile compiles one ACL of 10k entries, every tenth limited.
func BenchmarkCompile(b *testing.B) {
	a := &acl.ACL{Name: "big", Family: acl.IPv4}
	for i := 1; i <= 10000; i++ {
		e := &acl.Entry{Seq: i, Action: acl.Permit, Proto: acl.ProtoTCP,
			DstPort: acl.PortMatch{Op: acl.PortEq, Lo: uint16(i)}}
		if i%10 == 0 {
			e.Connlimits = []acl.Connlimit{{N: 10}}
		}
		a.Entries = append(a.Entries, e)
	}
	c := &acl.Config{ACLs: []*acl.ACL{a}, Interfaces: []*acl.Interface{
		{Kind: acl.IfLinux, Name: "eth0", Groups: [2][2]string{{"big", ""}}}}}
	b.ReportAllocs()
	for b.Loop() {
		rs, err := nft.Compile(c, nft.Options{})
		if err != nil {
			b.Fatal(err)
		}
		_ = rs.String()
	}
}

// TestLayers: every depth up to ExactLayers has its layer; above, the gap
// to the next layer keeps a key within ceil(E/16) of its exact budget; a
// key is never held below its old sessions.
func TestLayers(t *testing.T) {
	for _, tt := range []int{1, 2, 3, 10, 64, 65, 66, 100, 1000, 65535} {
		ls := nft.Layers(tt)
		for i, j := range ls {
			if j <= 0 || j >= tt || (i > 0 && j <= ls[i-1]) {
				t.Fatalf("Layers(%d) = %v: not increasing within 1..%d", tt, ls, tt-1)
			}
			if j <= nft.ExactLayers && j != i+1 {
				t.Fatalf("Layers(%d) = %v: misses a depth up to %d", tt, ls, nft.ExactLayers)
			}
		}
		for e := 1; e <= tt+1; e++ {
			d := nft.Depth(tt, e)
			switch {
			case d < min(e, tt):
				t.Fatalf("Depth(%d, %d) = %d: below the old sessions", tt, e, d)
			case e < tt && e <= nft.ExactLayers && d != e:
				t.Fatalf("Depth(%d, %d) = %d, want exact", tt, e, d)
			case e < tt && d-e > (e+15)/16:
				t.Fatalf("Depth(%d, %d) = %d: short by more than ceil(E/16)", tt, e, d)
			case d != tt && !slices.Contains(ls, d):
				t.Fatalf("Depth(%d, %d) = %d: not a layer", tt, e, d)
			}
		}
	}
	if n := len(nft.Layers(65535)); n > 200 {
		t.Errorf("Layers(65535) has %d layers; want a bounded number", n)
	}
}

// TestWindowSetNames: the rate and quota sets of an entry are named by
// what decides which connections reach them, not by its seq: a
// resequence, or a change of its other options, keeps them (and their
// windows); a change of its match does not; two limited denies that
// differ otherwise never share one.
func TestWindowSetNames(t *testing.T) {
	names := func(cfg string) []string {
		t.Helper()
		rs, err := nft.Compile(mustParse(t, cfg+"interface eth0\n ip access-group a in\n"), nft.Options{MgmtInterface: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range rs.Sets {
			if s.Kind == nft.SetRate || s.Kind == nft.SetQuota {
				out = append(out, s.Name)
			}
		}
		slices.Sort(out)
		return out
	}
	base := names("ip access-list extended a\n seq 10 permit tcp any any eq 80 rate 3 per minute quota 1 mbytes per minute\n")
	if len(base) != 2 {
		t.Fatalf("sets %v, want a rate and a quota set", base)
	}
	if got := names("ip access-list extended a\n seq 5 permit udp any any\n seq 20 permit tcp any any eq 80 connlimit 2 rate 3 per minute quota 1 mbytes per minute log\n"); !slices.Equal(got, base) {
		t.Errorf("moved and given other options: %v, want %v", got, base)
	}
	if got := names("ip access-list extended a\n seq 10 permit tcp any any eq 81 rate 3 per minute quota 1 mbytes per minute\n"); slices.ContainsFunc(got, func(n string) bool { return slices.Contains(base, n) }) {
		t.Errorf("another match keeps a set: %v, %v", got, base)
	}
	denies := names("ip access-list extended a\n seq 10 deny tcp any any eq 80 rate 3 per minute connlimit 5\n seq 20 deny tcp any any eq 80 rate 3 per minute\n")
	if len(denies) != 2 || denies[0] == denies[1] {
		t.Errorf("two limited denies share a rate set: %v", denies)
	}
}

// TestNamesUnique: every compiled golden ruleset declares each set, chain
// and counter once (the kernel refuses a second of a name, and the drift
// check compares how many there are), also with two permits that share a
// rate set.
func TestNamesUnique(t *testing.T) {
	rulesets := map[string]*nft.Ruleset{}
	for _, g := range loadGoldens(t) {
		rulesets[g.name] = g.rs
	}
	rs, err := nft.Compile(mustParse(t, `ip access-list extended a
 seq 10 permit tcp any any eq 80 rate 3 per minute
 seq 20 permit tcp any any eq 80 rate 3 per minute log
interface eth0
 ip access-group a in
`), nft.Options{MgmtInterface: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	rulesets["shared rate"] = rs
	for name, rs := range rulesets {
		seen := map[string]bool{}
		for _, s := range rs.Sets {
			if seen["set "+s.Name] {
				t.Errorf("%s: set %s twice", name, s.Name)
			}
			seen["set "+s.Name] = true
		}
		for _, c := range rs.Chains {
			if seen["chain "+c.Name] {
				t.Errorf("%s: chain %s twice", name, c.Name)
			}
			seen["chain "+c.Name] = true
		}
		for _, c := range rs.Counters {
			if seen["counter "+c] {
				t.Errorf("%s: counter %s twice", name, c)
			}
			seen["counter "+c] = true
		}
	}
	var rate []*nft.Set
	for _, s := range rs.Sets {
		if s.Kind == nft.SetRate {
			rate = append(rate, s)
		}
	}
	if len(rate) != 1 || rate[0].Entry.Seq != 10 {
		t.Errorf("shared rate set: %+v, want one, seq 10's", rate)
	}
}

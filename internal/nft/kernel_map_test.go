package nft_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

const mapConfig = `ip access-list extended check
 seq 5 deny tcp host 10.0.0.9 any eq 22
 seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 2
 seq 20 permit tcp host 10.0.0.3 any eq 80
 seq 30 deny tcp 10.0.0.4 0.0.0.1 any eq 443 connlimit 2
 seq 40 permit tcp any any neq 443
 seq 45 permit udp any any eq 53
 seq 50 permit icmp any any
 seq 60 permit tcp any any eq 443
interface management 0
 ip access-group check in
`

func compileMapConfig(t *testing.T, text string, run int) *nft.Ruleset {
	t.Helper()
	rs, err := nft.Compile(mustParse(t, text), nft.Options{MgmtInterface: "s0", MapRun: run})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// nft lists a map exactly as String renders it, and nft -f of that text
// makes the lookup's netlink expressions ours; the Applier's netlink
// table lists the same.
func TestKernelMapRoundTrip(t *testing.T) {
	rs := compileMapConfig(t, mapConfig, 2)
	ns := netns.New(t)
	path := filepath.Join(t.TempDir(), "maps.nft")
	if err := os.WriteFile(path, []byte(rs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	ns.MustExec(t, "nft", "-f", path)
	if d := cmp.Diff(rs.String(), nftSized(rs, ns.MustExec(t, "nft", "list", "table", "inet", rs.Table))); d != "" {
		t.Errorf("nft list differs from String() (-ours +nft):\n%s", d)
	}
	compareExprs(t, ns.NFT(t), rs)
	if d, err := applier(ns).Drift(rs); d != "" || err != nil {
		t.Errorf("drift of the nft -f table: %q, %v", d, err)
	}
	ns.MustExec(t, "nft", "delete", "table", "inet", rs.Table)

	a := applier(ns)
	mustApply(t, a, rs)
	listed := listTable(t, ns, rs.Table)
	for _, s := range rs.Sets {
		if s.Map != nil && !strings.Contains(listed, s.String()) {
			t.Errorf("the applied table lists map %s otherwise:\n%s\nwant\n%s", s.Name, listed, s)
		}
	}
	for _, ch := range rs.Chains {
		if !strings.Contains(listed, ch.String()) {
			t.Errorf("the applied table lists chain %s otherwise:\n%s\nwant\n%s", ch.Name, listed, ch)
		}
	}
}

// A change inside a run is an element change: the rules keep their
// handles; a changed or deleted element is drift, and Apply repairs it.
func TestKernelMapChangeIsElementChange(t *testing.T) {
	ns := netns.New(t)
	a := applier(ns)
	v0 := compileMapConfig(t, mapConfig, 2)
	mustApply(t, a, v0)
	before := handles(t, ns)
	// seq 20 is a plain permit: an element of the run's counter map.
	v1 := compileMapConfig(t, strings.Replace(mapConfig, "host 10.0.0.3 any eq 80", "host 10.0.0.3 any eq 8080", 1), 2)
	mustApply(t, a, v1)
	_, changed := sameHandles(before, handles(t, ns))
	for _, c := range changed {
		if !strings.Contains(c, "map ip_check_in_map5_17_c") {
			t.Errorf("changing an entry inside a map changed %s", c)
		}
	}
	const cm, vm = "ip_check_in_map5_17_c", "ip_check_in_map5_17"
	if !strings.Contains(listTable(t, ns, "slxsh"), `10.0.0.3 . 0.0.0.0/0 . tcp . 8080 : "ip_check_in_20_matches"`) {
		t.Errorf("changed element missing:\n%s", listTable(t, ns, "slxsh"))
	}
	inSyncFresh(t, ns, v1)

	const key = "{ 10.0.0.3 . 0.0.0.0/0 . tcp . 8080 }"
	// Someone deletes an element: drift, repaired by Apply.
	ns.MustExec(t, "nft", "delete", "element", "inet", "slxsh", cm, key)
	if d, err := applier(ns).Drift(v1); err != nil || !strings.Contains(d, cm) {
		t.Fatalf("drift after a deleted element: %q, %v", d, err)
	}
	b := applier(ns) // a new Applier knows nothing of the map: it refills it
	mustApply(t, b, v1)
	inSyncFresh(t, ns, v1)
	// Someone makes an element count another entry's counter.
	ns.MustExec(t, "nft", "delete", "element", "inet", "slxsh", cm, key)
	ns.MustExec(t, "nft", "add", "element", "inet", "slxsh", cm, `{ 10.0.0.3 . 0.0.0.0/0 . tcp . 8080 : "ip_check_in_5_matches" }`)
	if d, _ := applier(ns).Drift(v1); !strings.Contains(d, cm) {
		t.Fatalf("drift after a changed counter: %q", d)
	}
	mustApply(t, applier(ns), v1)
	inSyncFresh(t, ns, v1)
	// Someone changes a verdict.
	vkey := "{ 10.0.0.1 . 10.0.0.2 . tcp . 22 }"
	ns.MustExec(t, "nft", "delete", "element", "inet", "slxsh", vm, vkey)
	ns.MustExec(t, "nft", "add", "element", "inet", "slxsh", vm, "{ 10.0.0.1 . 10.0.0.2 . tcp . 22 : goto ip_check_in_5 }")
	if d, _ := applier(ns).Drift(v1); !strings.Contains(d, vm) {
		t.Fatalf("drift after a changed verdict: %q", d)
	}
	mustApply(t, applier(ns), v1)
	inSyncFresh(t, ns, v1)
	// Someone replaces the counter map with a plain set of the same key:
	// re-created as a counter map.
	ns.MustExec(t, "nft", "delete", "rule", "inet", "slxsh", "ip_check_in", "handle", ruleHandle(t, ns, "ip_check_in", "map=5 counters"))
	ns.MustExec(t, "nft", "delete", "set", "inet", "slxsh", cm)
	ns.MustExec(t, "nft", "add", "set", "inet", "slxsh", cm, "{ type ipv4_addr . ipv4_addr . inet_proto . inet_service; flags interval; }")
	if d, _ := applier(ns).Drift(v1); d == "" {
		t.Fatal("no drift after the counter map became a plain set")
	}
	mustApply(t, applier(ns), v1)
	inSyncFresh(t, ns, v1)
	// Back to linear rules and to maps again.
	mustApply(t, a, compileMapConfig(t, mapConfig, -1))
	mustApply(t, a, v0)
	inSyncFresh(t, ns, v0)
}

// ruleHandle returns the handle of the rule of chain whose comment holds
// part.
func ruleHandle(t *testing.T, ns *netns.NS, chain, part string) string {
	t.Helper()
	out := ns.MustExec(t, "nft", "-a", "list", "chain", "inet", "slxsh", chain)
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, "# handle "); i >= 0 && strings.Contains(l, part) {
			return strings.TrimSpace(l[i+len("# handle "):])
		}
	}
	t.Fatalf("no rule %q in chain %s:\n%s", part, chain, out)
	return ""
}

// Random lists over the client's addresses and the server's ports decide
// real connections the same way as rules and as maps, and each entry's
// counter (a plain permit's in a counter map) counts the same packets.
func TestKernelMapsDecideAsRules(t *testing.T) {
	p := netns.NewPair(t)
	clients := []string{"10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.5"}
	extraClients(t, p, clients[1:]...)
	var ports []string
	for _, port := range mapPorts {
		for _, q := range []uint16{port, port + 1} {
			ports = append(ports, p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, strconv.Itoa(int(q)))).Addr)
		}
	}
	mapped := 0
	for trial := range 16 {
		u := mapUniverse{rand.New(rand.NewPCG(uint64(trial), 11))}
		c := acl.New()
		if _, err := c.EnsureACL(acl.IPv4, "m"); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= 20; i++ {
			e := u.entry(10*i, false)
			if e.Action == acl.HardDrop {
				e.Action = acl.Deny // a drop costs a dial timeout
			}
			if e.Action == acl.Deny && u.r.IntN(2) == 0 {
				// Under its limit a deny goes on to the next entry: the
				// seam between a map and the rules after it.
				e.Connlimits = []acl.Connlimit{{N: 2 + u.r.IntN(2), Key: acl.PerSource}}
			}
			e.Proto = acl.ProtoTCP
			if e.Src.Kind == acl.AddrPrefix && e.Src.Prefix.Bits() < 29 {
				e.Src = acl.AnyAddr
			}
			_ = c.AddEntry(acl.IPv4, "m", e)
		}
		if _, err := c.EnsureInterface(acl.IfManagement, "0"); err != nil {
			t.Fatal(err)
		}
		if err := c.SetAccessGroup(acl.IfManagement, "0", acl.IPv4, acl.In, "m"); err != nil {
			t.Fatal(err)
		}
		type try struct{ src, dst string }
		var tries []try
		for range 40 {
			tries = append(tries, try{clients[u.r.IntN(len(clients))], ports[u.r.IntN(len(ports))]})
		}
		var got [2][]netns.Outcome
		var counted [2]map[string]uint64 // the packets each entry's matches counter counted
		for i, run := range []int{-1, 2} {
			rs, err := nft.Compile(c, nft.Options{MgmtInterface: "s0", MapRun: run})
			if err != nil {
				t.Fatal(err)
			}
			if run > 0 {
				for _, s := range rs.Sets {
					if s.Map != nil {
						mapped += len(s.Map.Elems)
					}
				}
			}
			a := applier(p.Server)
			mustApply(t, a, rs)
			var open []net.Conn
			for _, tr := range tries {
				conn, out, _ := p.Client.Dial(tr.src, tr.dst, netns.DialTimeout)
				got[i] = append(got[i], out)
				if out != netns.Connected {
					// Why: the kernel's count keeps a refused connection
					// (never confirmed) until the next jiffy when the next
					// check runs on another CPU (nf_conncount
					// find_or_evict): a timing artefact, the same for rules
					// and maps, that this test must not see.
					time.Sleep(10 * time.Millisecond)
				}
				if conn != nil {
					open = append(open, conn)
				}
			}
			for _, conn := range open {
				conn.Close()
			}
			cv, err := a.Counters()
			if err != nil {
				t.Fatal(err)
			}
			counted[i] = map[string]uint64{}
			for name, v := range cv {
				if strings.HasSuffix(name, "_matches") && v.Packets > 0 {
					counted[i][name] = v.Packets
				}
			}
			p.Server.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
		}
		if d := cmp.Diff(got[0], got[1]); d != "" {
			rs, _ := nft.Compile(c, nft.Options{MgmtInterface: "s0", MapRun: 2})
			var lines []string
			for i, tr := range tries {
				lines = append(lines, fmt.Sprintf("%d %s -> %s: %v / %v", i, tr.src, tr.dst, got[0][i], got[1][i]))
			}
			t.Errorf("trial %d: outcomes differ (-rules +maps):\n%s\n%s\n%s\n%s", trial, d, strings.Join(lines, "\n"), acl.Format(c), rs)
		} else if d := cmp.Diff(counted[0], counted[1]); d != "" {
			t.Errorf("trial %d: entries counted other packets (-rules +maps):\n%s", trial, d)
		}
	}
	if mapped < 20 {
		t.Fatalf("only %d elements were mapped: the test proves little", mapped)
	}
}

// A one-entry change of the 10k-entry ACL with maps changes no rule: the
// entry's old element goes and its new one comes, in one transaction; a
// restarted Applier (saved state) does the same.
func TestKernelMapChangeOfLargeACL(t *testing.T) {
	n := netns.New(t)
	state := filepath.Join(t.TempDir(), "nft-state")
	v0, v1 := benchRuleset(t, 10000, false), benchRuleset(t, 10000, true)
	a := applier(n)
	a.SetStatePath(state)
	t.Cleanup(a.Flush) // the writer, before the directory goes
	mustApply(t, a, v0)
	before := handles(t, n)
	gen := generation(t, a)
	if err := a.Apply(v1); err != nil {
		t.Fatal(err)
	}
	if g := generation(t, a); g != gen+1 {
		t.Errorf("generation %d after the change, want %d", g, gen+1)
	}
	if same, changed := sameHandles(before, handles(t, n)); len(changed) > 0 {
		t.Errorf("%d lines kept their handles; changed: %v", same, changed)
	}
	list := n.MustExec(t, "nft", "list", "table", "inet", "slxsh")
	if !strings.Contains(list, "10.0.19.136 . tcp . 65000 : goto ip_big_in_5000") || strings.Contains(list, "10.0.19.136 . tcp . 6000 :") {
		t.Errorf("entry 5000's element not changed")
	}
	inSyncFresh(t, n, v1)
	a.Flush()
	b := applier(n) // restarted: knows the elements from the saved state
	b.SetStatePath(state)
	t.Cleanup(b.Flush)
	if err := b.Apply(v0); err != nil {
		t.Fatal(err)
	}
	if _, changed := sameHandles(before, handles(t, n)); len(changed) > 0 {
		t.Errorf("restarted change replaced %v", changed)
	}
	inSyncFresh(t, n, v0)
}

// What the Applier knows of its table, kept up to date change by change
// (chains, sets, objects, map elements, rule handles, sums), is what the
// kernel holds, through random sequences of changes compiled with the
// cache as the agent compiles them, with a restart in the middle.
func TestKernelKnowledgeThroughChanges(t *testing.T) {
	n := netns.New(t)
	state := filepath.Join(t.TempDir(), "nft-state")
	a := applier(n)
	a.SetStatePath(state)
	t.Cleanup(a.Flush)
	o := nft.Options{MgmtInterface: "eth0", MapRun: 2, Cache: &nft.Cache{}, LookupUser: func(string) (uint32, error) { return 1000, nil }}
	u := mapUniverse{rand.New(rand.NewPCG(5, 41))}
	cfg := u.config(40)
	for _, e := range cfg.ACL(acl.IPv4, "m").Entries {
		e.Owner = nil // before it is compiled; later entries have none (u.entry(_, false))
	}
	edits, drifted := 0, 0
	for step := range 40 {
		next := cfg.Clone()
		l := next.ACL(acl.IPv4, "m")
		for range 1 + u.r.IntN(3) {
			switch i := u.r.IntN(len(l.Entries)); u.r.IntN(3) {
			case 0:
				if len(l.Entries) > 5 {
					l.Entries = append(l.Entries[:i], l.Entries[i+1:]...)
				}
			case 1:
				l.Entries[i] = u.entry(l.Entries[i].Seq, false)
			default:
				_ = next.AddEntry(acl.IPv4, "m", u.entry(l.Entries[i].Seq+1+u.r.IntN(9), false))
			}
		}
		if acl.Validate(next) != nil {
			continue
		}
		rs, err := nft.Compile(next, o)
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		mustApply(t, a, rs) // checks the Applier's knowledge against the kernel
		if step >= 10 && step%10 == 0 && step != 20 {
			drifted++
			// Someone flushes an entry's chain: found, repaired, and the
			// changes after go on from what the repair learned.
			for _, ch := range rs.Chains {
				if ch.Mapped && len(ch.Rules) > 0 {
					n.MustExec(t, "nft", "flush", "chain", "inet", "slxsh", ch.Name)
					break
				}
			}
			if d, err := a.Drift(rs); d == "" || err != nil {
				t.Fatalf("step %d: a flushed chain: drift %q, %v", step, d, err)
			}
			mustApply(t, a, rs)
		}
		if step == 20 {
			a.Flush()
			a = applier(n) // restarted: knows what the saved state says
			a.SetStatePath(state)
			t.Cleanup(a.Flush)
			mustApply(t, a, rs)
		}
		edits++
		cfg = next
	}
	if edits < 30 || drifted < 1 {
		t.Fatalf("only %d of 40 steps applied, %d repaired", edits, drifted)
	}
	rs, err := nft.Compile(cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	inSyncFresh(t, n, rs)
}

package nft_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/conntrack"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// aclRateEntries is the size of the ACL of BenchmarkKernelACLRate: the
// client's connections match its last entry.
const aclRateEntries = 1000

// aclRateWorkers open connections side by side (connRate): one after the
// other, a connection's time was mostly wakeups of idle CPUs, which vary
// by more than what a firewall costs.
const aclRateWorkers = 4

// aclRateVariants: no firewall; connection tracking alone (one `ct state
// established,related accept` rule), and with the client's limit as one
// bare nft rule (the floor of any nft connlimit); our table with an ACL of
// the client's entry only; our compiled 1000-entry ACL with maps (the
// default) and as rules, with the agent's session index beside it
// (-index); the same rules in iptables (legacy x_tables and the nf_tables
// flavour); each last entry with and without a connlimit.
var aclRateVariants = []string{
	"none", "conntrack", "conntrack-connlimit", "acl1",
	"maps", "maps-connlimit", "maps-index", "maps-connlimit-index",
	"rules", "rules-connlimit",
	"iptables", "iptables-connlimit",
	"iptables-nft", "iptables-nft-connlimit",
}

// aclRateConfig is the ACL: n-1 entries for other sources, then the one
// for the client (with connlimit 1000, never reached by connections
// opened and reset one after the other).
func aclRateConfig(n int, limit bool) string {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i < n; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp host 10.9.%d.%d any eq %d\n", i, i/256, i%256, 1000+i)
	}
	fmt.Fprintf(&b, " seq %d permit tcp host %s host %s eq 9000", n, netns.PairClient4, netns.PairServer4)
	if limit {
		fmt.Fprintf(&b, " connlimit %d", connRateLimit)
	}
	b.WriteString("\ninterface s0\n ip access-group big in\n")
	return b.String()
}

// aclRateIptables is the same list for iptables-restore.
func aclRateIptables(limit bool) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n")
	for i := 1; i < aclRateEntries; i++ {
		fmt.Fprintf(&b, "-A INPUT -i s0 -s 10.9.%d.%d/32 -p tcp -m tcp --dport %d -j ACCEPT\n", i/256, i%256, 1000+i)
	}
	match := fmt.Sprintf("-A INPUT -i s0 -s %s/32 -d %s/32 -p tcp -m tcp --dport 9000", netns.PairClient4, netns.PairServer4)
	if limit {
		fmt.Fprintf(&b, "%s -m conntrack --ctstate NEW -m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr -j REJECT --reject-with tcp-reset\n", match, connRateLimit)
	}
	b.WriteString(match + " -j ACCEPT\n-A INPUT -i s0 -p tcp -j REJECT --reject-with tcp-reset\nCOMMIT\n")
	return b.String()
}

// BenchmarkKernelACLRate measures new TCP connections per second through
// a 1000-entry ACL whose last entry admits them, in each variant of
// aclRateVariants (alternating with -count). See BENCHMARKS.md.
func BenchmarkKernelACLRate(b *testing.B) {
	netns.RequireRoot(b)
	dir := b.TempDir()
	for _, v := range aclRateVariants {
		b.Run(v, func(b *testing.B) {
			// A pair of its own: no table, chain or hook that another
			// variant left behind (an empty iptables chain costs a
			// connection too), and "none" is truly none.
			p := netns.NewPair(b)
			srv := netns.PairServer4 + ":9000"
			p.Server.Listen(b, srv)
			index := strings.HasSuffix(v, "-index")
			v := strings.TrimSuffix(v, "-index")
			limit := strings.HasSuffix(v, "-connlimit")
			base := strings.TrimSuffix(v, "-connlimit")
			switch base {
			case "conntrack":
				path := filepath.Join(dir, "conntrack.nft")
				text := "table inet slxsh {\n chain input {\n  type filter hook input priority filter; policy accept;\n  ct state established,related accept\n }\n}\n"
				if limit {
					text = fmt.Sprintf(`table inet slxsh {
	set s { type ipv4_addr; flags dynamic; }
	chain input { type filter hook input priority filter; policy accept;
		ct state established,related accept
		iifname "s0" ip saddr %s ip daddr %s tcp dport 9000 ct state new add @s { ip saddr ct count over %d } reject with tcp reset
	}
}
`, netns.PairClient4, netns.PairServer4, connRateLimit)
				}
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					b.Fatal(err)
				}
				p.Server.MustExec(b, "nft", "-f", path)
			case "acl1":
				loadConfig(b, p.Server, aclRateConfig(1, false), nft.Options{})
			case "maps", "rules":
				o := nft.Options{}
				if base == "rules" {
					o.MapRun = -1
				}
				text := aclRateConfig(aclRateEntries, limit)
				rs := loadConfig(b, p.Server, text, o)
				if maps := countMaps(rs); (maps > 0) != (base == "maps") {
					b.Fatalf("%s: %d maps", v, maps)
				}
				if index {
					followIndex(b, p.Server, text)
				}
			case "iptables", "iptables-nft":
				path := filepath.Join(dir, v+".rules")
				if err := os.WriteFile(path, []byte(aclRateIptables(limit)), 0o644); err != nil {
					b.Fatal(err)
				}
				tool := "iptables-legacy-restore"
				if base == "iptables-nft" {
					tool = "iptables-nft-restore"
				}
				if err := p.Server.Do(func() error {
					out, err := exec.Command(tool, path).CombinedOutput()
					if err != nil {
						return fmt.Errorf("%s: %v: %s", tool, err, out)
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			connRate(b, p.Client, srv, aclRateWorkers)
		})
	}
}

func countMaps(rs *nft.Ruleset) int {
	n := 0
	for _, s := range rs.Sets {
		if s.Map != nil {
			n++
		}
	}
	return n
}

// followIndex keeps the agent's session index of ns as the agent does
// (timestamps on, events as they come, an update every second) until b
// ends.
func followIndex(b *testing.B, ns *netns.NS, text string) {
	if err := conntrack.EnableTimestamps(ns.Fd()); err != nil {
		b.Fatal(err)
	}
	x, err := conntrack.NewIndex(ns.Fd(), nil)
	if err != nil {
		b.Fatal(err)
	}
	cfg := mustParse(b, text)
	bs := conntrack.Bindings(cfg, func(i *acl.Interface) string { return i.Name })
	if err := x.Update(bs); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go x.Follow(ctx)
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				x.Update(bs)
			}
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		x.Close()
	})
}

package nft_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// connRateLimit is the limit of the benchmarked entry: large enough that
// connections that are opened and reset one after the other never reach it.
const connRateLimit = 1000

// connRateVariants are the tables BenchmarkKernelConnRate compares: no
// firewall; the same entry as a bare nft connlimit rule without the
// reservation mechanism (the anchor); and our compiled entry, for a key
// without old sessions and for a key held at depth 60 (the connection goes
// through 60 layers).
var connRateVariants = []string{"none", "bare-connlimit", "compiled", "compiled-old60"}

// BenchmarkKernelConnRate measures new TCP connections per second through
// one limited entry (`permit tcp any host S eq 9000 connlimit 1000`, then
// `permit ip any any`), each connection opened, checked and reset (SO_LINGER
// 0, so nothing lingers in the count), in each variant of
// connRateVariants; with -count the variants alternate. See BENCHMARKS.md.
func BenchmarkKernelConnRate(b *testing.B) {
	netns.RequireRoot(b)
	p := netns.NewPair(b)
	srv := netns.PairServer4 + ":9000"
	p.Server.Listen(b, srv)
	rs := loadBenchConfig(b, p.Server)
	limit := nft.LimitSets(rs)[0]
	bare := fmt.Sprintf(`table inet slxsh {
	set bare { type ipv4_addr; size 65535; flags dynamic; }
	chain input { type filter hook input priority 0; policy accept;
		ct state established,related accept
		iifname "s0" ip daddr %s tcp dport 9000 ct state new add @bare { ip saddr ct count over %d } reject with tcp reset
	}
}`, netns.PairServer4, connRateLimit)
	barePath := filepath.Join(b.TempDir(), "bare.nft")
	if err := os.WriteFile(barePath, []byte(bare), 0o644); err != nil {
		b.Fatal(err)
	}
	a := applier(p.Server)
	for _, v := range connRateVariants {
		b.Run(v, func(b *testing.B) {
			deleteTable(b, p.Server)
			a = applier(p.Server)
			switch v {
			case "bare-connlimit":
				if err := nftF(p.Server, barePath); err != nil {
					b.Fatal(err)
				}
			case "compiled", "compiled-old60":
				if err := a.Apply(rs); err != nil {
					b.Fatal(err)
				}
				var res []nft.Reservation
				if v == "compiled-old60" {
					res = []nft.Reservation{{Set: limit.Name, Key: netns.PairClient4, Depth: 60}}
				}
				if err := a.WriteReservations(nft.LimitSets(rs), res, nft.LimitSets(rs)); err != nil {
					b.Fatal(err)
				}
			}
			connRate(b, p.Client, srv, 1)
		})
	}
	deleteTable(b, p.Server)
}

// connRate opens b.N connections from client to srv, one after the other
// in each of workers goroutines, each reset at once (SO_LINGER 0: nothing
// lingers in a count), and reports them per second. With more workers than
// CPUs, no CPU waits for a wakeup: what a connection costs decides the rate.
func connRate(b *testing.B, client *netns.NS, srv string, workers int) {
	b.ResetTimer()
	start := time.Now()
	clock, cpuOK := readCPUClock()
	errs := make(chan error, workers)
	for w := range workers {
		n := b.N / workers
		if w == 0 {
			n += b.N % workers
		}
		go func() {
			errs <- client.Do(func() error {
				for range n {
					c, err := net.DialTimeout("tcp", srv, time.Second)
					if err != nil {
						return err
					}
					c.(*net.TCPConn).SetLinger(0)
					c.Close()
				}
				return nil
			})
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "conns/s")
	if now, ok := readCPUClock(); ok && cpuOK {
		b.ReportMetric(float64(clock.busySince(now).Microseconds())/float64(b.N), "cpu-µs/conn")
	}
}

func loadBenchConfig(b *testing.B, ns *netns.NS) *nft.Ruleset {
	b.Helper()
	return loadConfig(b, ns, fmt.Sprintf(`ip access-list extended check
 seq 10 permit tcp any host %s eq 9000 connlimit %d
 seq 20 permit ip any any
interface s0
 ip access-group check in
`, netns.PairServer4, connRateLimit), nft.Options{})
}

// BenchmarkEntryCost reports what one `connlimit T` entry compiles to, for
// BENCHMARKS.md: its sets, their estimated kernel memory (SetMemoryApplied), and
// its rules (those of its ACL chain and of its reservation chain).
func BenchmarkEntryCost(b *testing.B) {
	for _, t := range []int{3, 10, 64, 100, 1000, 65535} {
		b.Run(fmt.Sprint(t), func(b *testing.B) {
			rs := compileB(b, fmt.Sprintf("ip access-list extended c\n seq 10 permit tcp any any eq 22 connlimit %d\ninterface eth0\n ip access-group c in\n", t))
			rules := 0
			for _, ch := range rs.Chains {
				if ch.Hook == nil && ch.Name != nft.RefuseChain {
					rules += len(ch.Rules)
				}
			}
			for range b.N {
				_ = rs.SetMemoryApplied()
			}
			b.ReportMetric(float64(len(rs.Sets)), "sets")
			b.ReportMetric(float64(rs.SetMemoryApplied())/1024, "set-KiB")
			b.ReportMetric(float64(rules-1), "rules") // less the implicit deny
		})
	}
}

func compileB(b *testing.B, text string) *nft.Ruleset {
	b.Helper()
	cfg := mustParse(b, text)
	rs, err := nft.Compile(cfg, nft.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

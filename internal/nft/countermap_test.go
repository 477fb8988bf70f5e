package nft

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl/acltest"
	"github.com/slxsh/slxsh/internal/cli"
)

// A counter map's element stands for the chain its entry would have had:
// what Compile keeps as the element's view (the chain it compiled, then
// left out) is what counterView makes of the element alone (a map read
// from saved state has no views), and that chain only counts and returns.
func TestCounterViewIsTheEntrysChain(t *testing.T) {
	opts := Options{MgmtInterface: "eth0", InterfaceMap: map[string]string{"0/1": "eth1", "0/2": "eth2"},
		Zone: time.UTC, Now: time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), MapRun: 2,
		LookupUser: func(string) (uint32, error) { return 1000, nil }}
	fixed, err := cli.ParseConfig(wireConfig(300) + `ip access-list extended mixed
 seq 10 permit udp host 10.1.0.1 any eq 53
 seq 20 permit sctp host 10.1.0.2 any range 100 200
 seq 30 permit ip host 10.1.0.3 any
 seq 40 permit tcp 10.2.0.0/16 any neq 80
 seq 50 permit icmp host 10.1.0.5 any
 seq 60 permit 47 host 10.1.0.6 any
 seq 70 deny ip host 10.1.0.7 any
 seq 80 permit ip any host 10.3.0.1
interface eth2
 ip access-group mixed in
`)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for seed := range 301 {
		cfg := fixed
		if seed > 0 {
			cfg = acltest.Random(rand.New(rand.NewPCG(uint64(seed), 5)))
		}
		rs, err := Compile(cfg, opts)
		if err != nil {
			continue
		}
		for _, s := range rs.Sets {
			if s.Kind != SetCounterMap {
				continue
			}
			for i := range s.Map.Elems {
				el := &s.Map.Elems[i]
				ref := s.Entry
				ref.Seq = el.Seq
				got, want := counterView(ref, el), s.Map.chains[i]
				if len(want.Rules) != 1 || got.Rules[0].String() != want.Rules[0].String() || got.Name != want.Name {
					t.Fatalf("seed %d, %s seq %d: view %q, compiled %q", seed, s.Name, el.Seq, got.Rules[0], want.Rules)
				}
				if countsOnly(want, nil, len(want.Rules[0].Stmts)-2) != el.Counter {
					t.Fatalf("seed %d, %s seq %d: the chain does more than count %s", seed, s.Name, el.Seq, el.Counter)
				}
				seen++
			}
		}
	}
	if seen < 100 {
		t.Fatalf("only %d counter elements: the test proves little", seen)
	}
}

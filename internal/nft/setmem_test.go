package nft_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestSetTableMemory pins the estimate to the figures measured with
// scripts/setmem.sh (BENCHMARKS.md): the table steps where size*4/3 passes
// a power of two (1536 -> 32 KiB, 1537 -> 64 KiB).
func TestSetTableMemory(t *testing.T) {
	for _, c := range []struct {
		size uint32
		want uint64
	}{
		{0, 1 << 10},
		{1, 64},
		{2, 64},
		{512, 16 << 10},
		{1024, 32 << 10},
		{1536, 32 << 10},
		{1537, 64 << 10},
		{4096, 128 << 10},
		{16384, 512 << 10},
		{nft.UnsizedSetCap, 2 << 20},
		{65536, 2 << 20},
		{1 << 24, 512 << 20},
	} {
		if got := nft.SetTableMemory(c.size); got != c.want {
			t.Errorf("SetTableMemory(%d) = %d, want %d", c.size, got, c.want)
		}
	}
}

const memACL = `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit ip any any
interface s0
 ip access-group check in
`

// TestSetMaxMemory: a limit set counts its table and elements at its
// capacity (unsized: the kernel's cap), whatever its declared size; the
// other sets count their table as created.
func TestSetMaxMemory(t *testing.T) {
	const full = 2<<20 + 65535*128 // table at the cap, connlimit elements
	for _, c := range []struct {
		set  *nft.Set
		want uint64
	}{
		{&nft.Set{Name: "s", Kind: nft.SetConnlimit}, full},
		{&nft.Set{Name: "s", Kind: nft.SetConnlimit, Size: 65535}, full},
		{&nft.Set{Name: "s", Kind: nft.SetConnlimit, Size: 1024}, 32<<10 + 1024*128},
		{&nft.Set{Name: "s", Kind: nft.SetRate}, 2<<20 + 65535*160},
		{&nft.Set{Name: "s", Kind: nft.SetQuota, Size: 2}, 64 + 2*160},
		{&nft.Set{Name: "s", Kind: nft.SetBlocked, Key: nft.KeyIPv6}, 2<<20 + 65535*64},
		{&nft.Set{Name: "s_blocked_full", Kind: nft.SetBlocked, Key: nft.KeyNFProto, Size: 2}, 64},
		{&nft.Set{Name: "s_l1", Kind: nft.SetConnlimit, Limit: "s"}, 1 << 10},
		{&nft.Set{Name: "s_r", Kind: nft.SetMember, Limit: "s"}, 1 << 10},
		{&nft.Set{Name: "s_g", Kind: nft.SetGate, Size: 2, Limit: "s"}, 64},
	} {
		if got := nft.SetMaxMemory(c.set); got != c.want {
			t.Errorf("SetMaxMemory(%s kind %v size %d) = %d, want %d", c.set.Name, c.set.Kind, c.set.Size, got, c.want)
		}
	}
}

func TestRulesetSetMemory(t *testing.T) {
	rs := compile(t, memACL)
	// connlimit 3: the limit set (unsized), the gate (2), and unsized: the
	// reserved and full sets, two layer members and two layer counts; and
	// the table's grace set (2).
	if len(rs.Sets) != 9 {
		t.Fatalf("%d sets, want 9:\n%s", len(rs.Sets), rs)
	}
	for _, s := range rs.Sets {
		if want := map[bool]uint32{true: 2}[s.Kind == nft.SetGate || s.Kind == nft.SetGrace]; s.Size != want {
			t.Errorf("set %s has size %d, want %d", s.Name, s.Size, want)
		}
	}
	applied := 2*nft.SetTableMemory(2) + 7*nft.SetTableMemory(0)
	if got := rs.SetMemoryApplied(); got != applied || got > 8<<10 {
		t.Errorf("SetMemoryApplied = %d, want %d", got, applied)
	}
	want := applied - nft.SetTableMemory(0) + 2<<20 + 65535*128
	if got := rs.SetMemory(); got != want || got < 10<<20 {
		t.Errorf("SetMemory = %d, want %d", got, want)
	}
	small := compileWith(t, memACL, nft.Options{SetSize: 1024})
	if got, want := small.SetMemoryApplied(), applied-(1<<10)+(32<<10); got != want {
		t.Errorf("SetMemoryApplied with SetSize 1024 = %d, want %d", got, want)
	}
	if got, want := small.SetMemory(), applied-(1<<10)+(32<<10)+1024*128; got != want {
		t.Errorf("SetMemory with SetSize 1024 = %d, want %d", got, want)
	}
}

// TestCompileRefusesSetMemoryOverLimit: a config whose sets could need
// more kernel memory when full than Options.MaxSetMemory is refused with
// an *acl.Error naming both figures; at the limit it compiles.
func TestCompileRefusesSetMemoryOverLimit(t *testing.T) {
	cfg := mustParse(t, limitedList(100))

	rs, err := nft.Compile(cfg, nft.Options{})
	if err != nil {
		t.Fatal(err)
	}
	need := rs.SetMemory()
	if need < 1000<<20 {
		t.Fatalf("100 limited entries need %d bytes when full, want over 1000 MiB", need)
	}
	if applied := rs.SetMemoryApplied(); applied > 1<<20 {
		t.Fatalf("100 limited entries take %d bytes when applied, want under 1 MiB", applied)
	}

	if _, err := nft.Compile(cfg, nft.Options{MaxSetMemory: need}); err != nil {
		t.Errorf("compile at exactly the limit: %v", err)
	}
	if _, err := nft.Compile(cfg, nft.Options{MaxSetMemory: need - 1}); err == nil {
		t.Errorf("compile one byte over the limit: no error")
	}
	rs, err = nft.Compile(cfg, nft.Options{MaxSetMemory: 150 << 20})
	var ae *acl.Error
	if rs != nil || !errors.As(err, &ae) {
		t.Fatalf("compile over the limit: %v, %v; want nil and an *acl.Error", rs, err)
	}
	for _, w := range []string{"about 1001 MiB", "when full", "the 150 MiB allowed", "100 limit sets of up to 65535 keys", "707 KiB when applied", "701 other sets", "--limit-set-memory", "--limit-set-size"} {
		if !strings.Contains(ae.Msg, w) {
			t.Errorf("error %q does not say %q", ae.Msg, w)
		}
	}

	// A smaller set size brings the same config under the limit: 100
	// tables of 128 KiB and 4096 elements each.
	if _, err := nft.Compile(cfg, nft.Options{SetSize: 4096, MaxSetMemory: 64 << 20}); err != nil {
		t.Errorf("compile with set size 4096 under 64 MiB: %v", err)
	}
	rs, err = nft.Compile(cfg, nft.Options{SetSize: 4096, MaxSetMemory: 60 << 20})
	if rs != nil || !errors.As(err, &ae) || !strings.Contains(ae.Msg, "100 limit sets of up to 4096 keys") {
		t.Errorf("compile with set size 4096 over 60 MiB: %v", err)
	}
	// Other errors are reported as they were, without a memory figure.
	// (management 0 without Options.MgmtInterface).
	bad := mustParse(t, strings.Replace(limitedList(100), "interface s0", "interface management 0", 1))
	if _, err := nft.Compile(bad, nft.Options{MaxSetMemory: 1}); err == nil || strings.Contains(err.Error(), "kernel memory") {
		t.Errorf("compile of a config with another error: %v", err)
	}
}

// The keys of all connlimit sets together cannot outnumber what the
// conntrack table can hold (times the sets one connection is counted in):
// 500 limited entries, about 5 GiB if every set were full, need a few
// hundred MiB with a table of 262144 connections.
func TestSetMemoryBoundedByConntrack(t *testing.T) {
	cfg := mustParse(t, limitedList(500))
	if _, err := nft.Compile(cfg, nft.Options{MaxSetMemory: 1 << 30}); err == nil {
		t.Fatal("500 full connlimit sets under 1 GiB without a conntrack bound")
	}
	if _, err := nft.Compile(cfg, nft.Options{MaxSetMemory: 1 << 30, ConntrackMax: 262144}); err != nil {
		t.Fatalf("500 connlimit sets with 262144 tracked connections: %v", err)
	}
	if _, err := nft.Compile(cfg, nft.Options{MaxSetMemory: 200 << 20, ConntrackMax: 262144}); err == nil {
		t.Fatal("2 M connlimit keys under 200 MiB")
	}
}

// limitedList is an ACL of n entries with `connlimit 3` each.
func limitedList(n int) string {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp any any eq %d connlimit 3\n", i*10, 1000+i)
	}
	b.WriteString("interface s0\n ip access-group big in\n")
	return b.String()
}

package nft

import (
	"encoding/binary"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
)

// An Applier that knows nothing of the table (a restart whose saved
// knowledge no longer holds, a table nft -f made) reads the maps back:
// those that hold the ruleset's elements are neither written nor
// re-created; one that differs is re-created whole (emptied in place, its
// elements went one by one, each in time linear in the map: 10 s at 50k
// entries), and the others stay as they are.
func TestKernelUnknownMapsReadBack(t *testing.T) {
	ns := netns.New(t)
	cfg, err := cli.ParseConfig(`ip access-list extended check
 seq 5 permit tcp host 10.0.0.1 any eq 22 connlimit 2
 seq 10 permit tcp host 10.0.0.2 any eq 80
 seq 20 permit tcp host 10.0.0.3 any eq 443
 seq 30 permit udp any any eq 53
 seq 40 permit tcp host 10.0.0.4 any eq 25 connlimit 1
 seq 50 permit tcp host 10.0.0.5 any eq 25
interface management 0
 ip access-group check in
`)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(cfg, Options{MgmtInterface: "lo", MapRun: 2})
	if err != nil {
		t.Fatal(err)
	}
	var maps []string
	for _, s := range rs.Sets {
		if s.Map != nil {
			maps = append(maps, s.Name)
		}
	}
	if len(maps) != 2 {
		t.Fatalf("maps %q, want a verdict map and a counter map", maps)
	}
	applier := func() *Applier { return NewApplier("slxsh", nftables.WithNetNSFd(ns.Fd())) }
	if err := applier().Apply(rs); err != nil {
		t.Fatal(err)
	}
	// What each Apply's batch does to sets and their elements.
	type setOps struct{ elems, delSets int }
	var got setOps
	check := wireCheck
	defer func() { wireCheck = check }()
	wireCheck = func(w *wire, q func(txnWriter) error, echo func(string) bool) {
		if check != nil {
			check(w, q, echo)
		}
		got = setOps{}
		for _, off := range w.offs {
			switch binary.NativeEndian.Uint16(w.buf[off+4:]) & 0xff {
			case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
				got.elems++
			case unix.NFT_MSG_DELSET:
				got.delSets++
			}
		}
	}
	mustSync := func(step string) {
		t.Helper()
		if d, err := applier().Drift(rs); d != "" || err != nil {
			t.Fatalf("%s: drift %q, %v", step, d, err)
		}
	}

	if err := applier().Apply(rs); err != nil {
		t.Fatal(err)
	}
	if got != (setOps{}) {
		t.Errorf("a table that holds the maps: %+v set messages, want none", got)
	}
	mustSync("maps held")

	// Someone deletes an element of the counter map.
	ns.MustExec(t, "nft", "delete", "element", "inet", "slxsh", maps[1], "{ 10.0.0.3 . tcp . 443 }")
	if err := applier().Apply(rs); err != nil {
		t.Fatal(err)
	}
	if got.delSets != 1 || got.elems != 1 {
		t.Errorf("one map drifted: %+v; want it deleted and re-created with its elements (one message), the other left", got)
	}
	mustSync("map repaired")
}

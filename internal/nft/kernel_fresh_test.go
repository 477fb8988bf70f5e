package nft_test

import (
	"net"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

const freshConfig = `ip access-list extended v4
 seq 10 permit tcp any any eq 22 connlimit 2
ipv6 access-list extended v6
 seq 10 permit tcp any any eq 22 connlimit 2
interface s0
 ip access-group v4 in
 ipv6 access-group v6 in
`

// Right after Apply the Applier knows its new limits' gates closed and
// their reservation sets empty without reading them; a commit by anyone
// else ends that knowledge; opening the gates of both families works from
// it (a wrong element would fail the transaction).
func TestKernelFreshLimitsAfterApply(t *testing.T) {
	p := netns.NewPair(t)
	srv4 := p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, "22")).Addr
	srv6 := p.Server.Listen(t, net.JoinHostPort(netns.PairServer6, "22")).Addr
	rs := compile(t, freshConfig)
	limits := nft.LimitSets(rs)
	if len(limits) != 2 {
		t.Fatalf("%d limit sets", len(limits))
	}
	if limits[0].Key != nft.KeyIPv4 {
		limits[0], limits[1] = limits[1], limits[0]
	}
	a := applier(p.Server)
	if err := a.Apply(rs); err != nil {
		t.Fatal(err)
	}
	gated, err := a.Gated(limits)
	if err != nil || len(gated) != 2 {
		t.Fatalf("Gated after Apply = %v, %v; want both", gated, err)
	}
	// Someone else opens the v4 gate: the Applier must read again.
	p.Server.MustExec(t, "nft", "delete", "element", "inet", "slxsh", nft.GateSetName(limits[0].Name), "{ ipv4 }")
	gated, err = a.Gated(limits)
	if err != nil || len(gated) != 1 || gated[0].Name != limits[1].Name {
		t.Fatalf("Gated after a foreign commit = %v, %v; want only %s", names(gated), err, limits[1].Name)
	}
	// Renewed by a second Apply, both are fresh again; opening them from
	// that knowledge works for both families.
	if err := a.Apply(rs, limits[0].Name, limits[1].Name); err != nil {
		t.Fatal(err)
	}
	if err := a.WriteReservations(limits, nil, limits); err != nil {
		t.Fatalf("open fresh gates: %v", err)
	}
	if gated, err := applier(p.Server).Gated(limits); err != nil || len(gated) != 0 {
		t.Fatalf("read back after opening: gated %v, %v", names(gated), err)
	}
	if gated, err := a.Gated(limits); err != nil || len(gated) != 0 {
		t.Fatalf("after opening (known): gated %v, %v", names(gated), err)
	}
	// Someone closes a gate again: the Applier must read it.
	p.Server.MustExec(t, "nft", "add", "element", "inet", "slxsh", nft.GateSetName(limits[1].Name), "{ ipv6 }")
	if gated, err := a.Gated(limits); err != nil || len(gated) != 1 || gated[0].Name != limits[1].Name {
		t.Fatalf("after a foreign close: gated %v, %v; want %s", names(gated), err, limits[1].Name)
	}
	if err := a.WriteReservations(limits, nil, limits[1:]); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []string{srv4, srv6} {
		openN(t, p.Client, "", srv, 2)
		p.Client.Expect(t, "", srv, netns.Reset)
	}
	// Written: no longer fresh (a reservation made now must be read back).
	if err := a.WriteReservations(limits, []nft.Reservation{{Set: limits[0].Name, Key: netns.PairClient4, Depth: 1}}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := a.Reservations(limits)
	if err != nil || len(got) != 1 || got[0].Key != netns.PairClient4 {
		t.Fatalf("Reservations = %v, %v", got, err)
	}
}

func names(sets []*nft.Set) []string {
	var out []string
	for _, s := range sets {
		out = append(out, s.Name)
	}
	return slices.Clip(out)
}

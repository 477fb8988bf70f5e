package nft_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/nft"
)

// TestRenewals: a limit set is renewed when what reaches its rule changes
// (an earlier entry that a connection could match with it, its own match,
// its chain's bindings, a block-for lockout of the list), not when a later
// entry, a disjoint earlier one or another ACL changes; a new limit set is
// not "renewed" (it is new).
func TestRenewals(t *testing.T) {
	base := `ip access-list extended a
 seq 5 permit tcp host 10.0.0.9 any eq 22
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit tcp any any eq 80 connlimit 5
 seq 30 permit ip any any
interface eth0
 ip access-group a in
`
	s10, s20 := "ip_a_in_10_src_3", "ip_a_in_20_src_5"
	prev, prevCfg := compile(t, base), mustParse(t, base)
	for _, c := range []struct {
		name, from, to string
		want           []string
	}{
		{"same", "", "", nil},
		{"later entry", " seq 30 permit ip any any", " seq 30 deny ip any any", nil},
		{"earlier entry removed", " seq 5 permit tcp host 10.0.0.9 any eq 22\n", "", []string{s10}},
		{"earlier entry moves off", " seq 5 permit tcp host 10.0.0.9 any eq 22", " seq 5 permit tcp host 10.0.0.9 any eq 23", []string{s10}},
		{"earlier entry moves on", " seq 5 permit tcp host 10.0.0.9 any eq 22", " seq 5 permit tcp host 10.0.0.9 any eq 80", []string{s10, s20}},
		{"earlier disjoint entry added", " seq 5 permit tcp host 10.0.0.9 any eq 22", " seq 5 permit tcp host 10.0.0.9 any eq 22\n seq 6 deny tcp any any eq 25\n seq 7 permit udp any any eq 22 connlimit 2", nil},
		{"block-for on an earlier entry", " seq 5 permit tcp host 10.0.0.9 any eq 22", " seq 5 permit tcp host 10.0.0.9 any eq 22 connlimit 1 block-for 60", []string{s10, s20}},
		{"own match", " seq 20 permit tcp any any eq 80 connlimit 5", " seq 20 permit tcp any any eq 81 connlimit 5", []string{s20}},
		{"own limit", " seq 20 permit tcp any any eq 80 connlimit 5", " seq 20 permit tcp any any eq 80 connlimit 6", nil},
		{"another interface", "interface eth0\n", "interface eth1\n ip access-group a in\ninterface eth0\n", []string{s10, s20}},
	} {
		text := replaceOnce(base, c.from, c.to)
		next := compile(t, text)
		if got := nft.Renewals(prev, next, prevCfg, mustParse(t, text)); !slices.Equal(got, c.want) {
			t.Errorf("%s: Renewals = %v, want %v", c.name, got, c.want)
		}
	}
	if got := nft.Renewals(nil, prev, nil, prevCfg); got != nil {
		t.Errorf("Renewals from nothing = %v, want none (an adopted table keeps its counts)", got)
	}
}

func replaceOnce(s, from, to string) string {
	if !strings.Contains(s, from) {
		panic("not found: " + from)
	}
	return strings.Replace(s, from, to, 1)
}

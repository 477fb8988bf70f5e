package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// denyAgent answers `show access-list sessions` for a limited deny entry:
// 10.0.0.1 holds 2 of `connlimit 3`, which the agent marks at the limit (a
// limited deny refuses the 3rd connection, this one included).
func denyAgent(b Backend) Backend {
	return withOps(b, func(h Handlers[struct{}]) {
		Handle(h, OpSessions, func(struct{}, ACLRef) ([]SessionKey, error) {
			return []SessionKey{{Seq: 10, Key: "10.0.0.1", Sessions: 2, Limit: 3, AtLimit: true}, {Seq: 10, Key: "10.0.0.2", Sessions: 1, Limit: 3}}, nil
		})
	})
}

// TestShowSessionsMarkerFromAgent: the at-limit marker is the agent's
// AtLimit, not Sessions >= Limit (one off for deny entries).
func TestShowSessionsMarkerFromAgent(t *testing.T) {
	base, err := ParseConfig("ip access-list extended check\n seq 10 deny tcp any any eq 22 connlimit 3\n seq 20 permit ip any any\n!\n")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession(denyAgent(NewMemoryBackend(base)), "h")
	var out strings.Builder
	if err := s.Execute("show access-list sessions ip check", &out); err != nil {
		t.Fatal(err)
	}
	want := `ip access-list extended check
 seq 10 deny tcp any any eq 22 connlimit 3
   10.0.0.1                                 2/3  at limit
   10.0.0.2                                 1/3
`
	if out.String() != want {
		t.Errorf("show access-list sessions:\n%s", cmp.Diff(want, out.String()))
	}
}

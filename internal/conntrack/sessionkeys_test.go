package conntrack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestSessionKeysCarryAtLimit: a key's AtLimit, for a limited deny one
// below the limit, and its old sessions (OldMark) are counted.
func TestSessionKeysCarryAtLimit(t *testing.T) {
	bs := bind("d", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Deny, Proto: 6, Connlimits: limits(3, acl.PerSource, 0)},
		&acl.Entry{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny})
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2), tcp("10.0.0.5", "10.0.0.2", 22, 3)}
	flows[1].Mark = OldMark
	got := Attribute(bs, flows, nil).Counts()
	want := []KeyCount{
		{ACL: "d", Family: acl.IPv4, Dir: acl.In, Seq: 10, Key: "10.0.0.1", Sessions: 2, Old: 1, Limit: 3, AtLimit: true},
		{ACL: "d", Family: acl.IPv4, Dir: acl.In, Seq: 10, Key: "10.0.0.5", Sessions: 1, Limit: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Counts (-want +got):\n%s", diff)
	}
}

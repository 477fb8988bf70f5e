package conntrack

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// TestSessionKeysCarryAtLimit: the shell's marker is the attribution's
// AtLimit, which for a limited deny is one below the limit.
func TestSessionKeysCarryAtLimit(t *testing.T) {
	bs := bind("d", acl.IPv4, acl.In,
		&acl.Entry{Seq: 10, Action: acl.Deny, Proto: 6, Connlimit: limit(3, acl.PerSource, 0)},
		&acl.Entry{Seq: 20, Action: acl.Permit, Proto: acl.ProtoAny})
	flows := []Flow{tcp("10.0.0.1", "10.0.0.2", 22, 1), tcp("10.0.0.1", "10.0.0.2", 22, 2), tcp("10.0.0.5", "10.0.0.2", 22, 3)}
	got := SessionKeys(Attribute(bs, flows, nil).Counts(), acl.IPv4, "d", 0)
	want := []cli.SessionKey{
		{Seq: 10, Key: "10.0.0.1", Sessions: 2, Limit: 3, AtLimit: true},
		{Seq: 10, Key: "10.0.0.5", Sessions: 1, Limit: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SessionKeys (-want +got):\n%s", diff)
	}
	if got := SessionKeys(Attribute(bs, flows, nil).Counts(), acl.IPv4, "d", 20); len(got) != 0 {
		t.Errorf("seq 20 (unlimited): %+v", got)
	}
}

package acl_test

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// TestMutationsAtomic applies random operations, valid and invalid, to
// random configs: a failing operation must leave the config deeply equal to
// before, a successful one must leave it valid.
func TestMutationsAtomic(t *testing.T) {
	failed, succeeded := 0, 0
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		c := acltest.Random(r)
		for step := 0; step < 40; step++ {
			before := c.Clone()
			name, err := randomOp(r, c)
			if err != nil {
				failed++
				if !reflect.DeepEqual(before, c) {
					t.Fatalf("seed %d step %d: failed %s (%v) changed the config:\n%s\nwas\n%s",
						seed, step, name, err, acl.Format(c), acl.Format(before))
				}
				continue
			}
			succeeded++
			if err := acl.Validate(c); err != nil {
				t.Fatalf("seed %d step %d: %s left an invalid config: %v\n%s", seed, step, name, err, acl.Format(c))
			}
		}
	}
	if failed < 1000 || succeeded < 1000 {
		t.Errorf("operations: %d failed, %d succeeded; the generator should exercise both", failed, succeeded)
	}
}

// randomOp performs one random operation on c and names it.
func randomOp(r *rand.Rand, c *acl.Config) (string, error) {
	f := acl.Family(r.IntN(2))
	aclName := pickACL(r, c, f)
	trName := "office"
	if len(c.TimeRanges) > 0 && r.IntN(4) != 0 {
		trName = c.TimeRanges[r.IntN(len(c.TimeRanges))].Name
	}
	kind, ifname := pickIf(r, c)
	switch r.IntN(16) {
	case 0, 1, 2, 3:
		return "AddEntry", c.AddEntry(f, aclName, randomEntry(r, c, f))
	case 4:
		return "DeleteSeq", c.DeleteSeq(f, aclName, r.IntN(100))
	case 5:
		return "DeleteMatching", c.DeleteMatching(f, aclName, randomEntry(r, c, f))
	case 6:
		return "Resequence", c.Resequence(f, aclName, r.IntN(70000), r.IntN(30000))
	case 7:
		return "DeleteACL", c.DeleteACL(f, aclName)
	case 8:
		_, err := c.EnsureACL(f, aclName)
		return "EnsureACL", err
	case 9:
		return "SetAccessGroup", c.SetAccessGroup(kind, ifname, f, acl.Direction(r.IntN(2)), aclName)
	case 10:
		return "ClearAccessGroup", c.ClearAccessGroup(kind, ifname, f, acl.Direction(r.IntN(2)), aclName)
	case 11:
		return "DeleteInterface", c.DeleteInterface(kind, ifname)
	case 12:
		return "DeleteTimeRange", c.DeleteTimeRange(trName)
	case 13:
		p := acl.Periodic{Days: acl.DaySpec(r.IntN(11)), Start: r.IntN(1500), End: r.IntN(1500)}
		if r.IntN(2) == 0 {
			return "DeletePeriodic", c.DeletePeriodic(trName, p)
		}
		return "AddPeriodic", c.AddPeriodic(trName, p)
	case 14:
		d := func() *acl.DateTime {
			if r.IntN(3) == 0 {
				return nil
			}
			return &acl.DateTime{Year: 2020 + r.IntN(90), Month: r.IntN(14), Day: r.IntN(33), Hour: r.IntN(25), Minute: r.IntN(61)}
		}
		return "SetAbsolute", c.SetAbsolute(trName, &acl.Absolute{Start: d(), End: d()})
	}
	_, err := c.EnsureTimeRange(trName)
	return "EnsureTimeRange", err
}

func pickACL(r *rand.Rand, c *acl.Config, f acl.Family) string {
	var names []string
	for _, a := range c.ACLs {
		if a.Family == f {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 || r.IntN(6) == 0 {
		return []string{"new", "bad name", ""}[r.IntN(3)]
	}
	return names[r.IntN(len(names))]
}

func pickIf(r *rand.Rand, c *acl.Config) (acl.IfKind, string) {
	if len(c.Interfaces) == 0 || r.IntN(4) == 0 {
		switch r.IntN(4) {
		case 0:
			return acl.IfManagement, "0"
		case 1:
			return acl.IfEthernet, "1/1"
		case 2:
			return acl.IfLinux, "eth7"
		}
		return acl.IfEthernet, "bad"
	}
	i := c.Interfaces[r.IntN(len(c.Interfaces))]
	return i.Kind, i.Name
}

// randomEntry is a valid-looking entry, often broken in one field.
func randomEntry(r *rand.Rand, c *acl.Config, f acl.Family) *acl.Entry {
	e := &acl.Entry{Action: acl.Action(r.IntN(3)), Proto: []int{acl.ProtoAny, acl.ProtoTCP, acl.ProtoUDP, 47}[r.IntN(4)]}
	if r.IntN(3) == 0 {
		e.Seq = r.IntN(80)
	}
	if acl.HasPorts(e.Proto) || r.IntN(10) == 0 {
		e.DstPort = acl.PortMatch{Op: acl.PortEq, Lo: uint16(r.IntN(3))}
	}
	switch r.IntN(12) {
	case 0:
		e.Src = acl.NewHostAddr(netip.MustParseAddr("10.0.0.1"))
	case 1:
		e.Src = acl.NewHostAddr(netip.MustParseAddr("2001:db8::1"))
	case 2:
		e.Connlimits = []acl.Connlimit{{N: r.IntN(3) - 1, Key: acl.KeyKind(r.IntN(4)), PrefixLen: r.IntN(40)}}
	case 3:
		e.Owner = &acl.Owner{UID: r.IntN(3)}
	case 4:
		e.TimeRange = []string{"office", "nope"}[r.IntN(2)]
		if len(c.TimeRanges) > 0 && r.IntN(2) == 0 {
			e.TimeRange = c.TimeRanges[0].Name
		}
	case 5:
		e.Refuse = acl.Refuse{Kind: acl.RefuseKind(r.IntN(4)), Message: []string{"", "go away"}[r.IntN(2)]}
	case 6:
		e.BlockFor = &acl.BlockFor{Seconds: r.IntN(3)}
		if r.IntN(2) == 0 {
			e.Rate = &acl.Rate{N: r.IntN(3), Per: acl.Period(r.IntN(4))}
		}
	case 7:
		e.Action = acl.Remark
		e.Proto, e.DstPort = 0, acl.PortMatch{}
		e.Remark = []string{"", "note", " x"}[r.IntN(3)]
	case 8:
		e.Quota = &acl.Quota{N: uint64(r.IntN(2)), Per: acl.Period(r.IntN(4))}
	}
	return e
}

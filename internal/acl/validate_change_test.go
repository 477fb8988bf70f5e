package acl_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// ValidateChange gives what Validate gives, on random sequences of
// changes of random configs: through the mutation API (valid or refused),
// and behind its back (entries out of order, duplicated, invalid or nil,
// time ranges gone), a few at a time; a valid result is the base of the
// next change.
func TestValidateChangeAgrees(t *testing.T) {
	valid, invalid := 0, 0
	for seed := range uint64(300) {
		v, i := changeSeries(t, rand.New(rand.NewPCG(seed, 5)), 30)
		valid, invalid = valid+v, invalid+i
	}
	t.Logf("%d valid, %d invalid", valid, invalid)
	if valid < 2000 || invalid < 2000 {
		t.Errorf("%d valid and %d invalid changes; the generator should make both", valid, invalid)
	}
}

// FuzzValidateChange: TestValidateChangeAgrees from any seed.
func FuzzValidateChange(f *testing.F) {
	f.Add(uint64(0), uint64(0))
	f.Add(uint64(7), uint64(5))
	f.Fuzz(func(t *testing.T, a, b uint64) { changeSeries(t, rand.New(rand.NewPCG(a, b)), 30) })
}

// changeSeries makes steps random changes of a random config and fails
// unless ValidateChange agrees with Validate on each; it counts the valid
// and the invalid results.
func changeSeries(t *testing.T, r *rand.Rand, steps int) (valid, invalid int) {
	t.Helper()
	prev := acltest.Random(r)
	for step := range steps {
		next := prev.Clone()
		var did []string
		for n := 1 + r.IntN(3); n > 0; n-- {
			did = append(did, randomChange(r, next))
			if did[len(did)-1] == "nil" {
				break // the mutation API expects no nil entries
			}
		}
		want, got := errText(acl.Validate(next)), errText(acl.ValidateChange(prev, next))
		if got != want {
			t.Fatalf("step %d after %v:\nValidateChange: %s\nValidate: %s\nof\n%s", step, did, got, want, acl.Format(next))
		}
		if want != "" {
			invalid++
			continue
		}
		valid++
		prev = next
	}
	return valid, invalid
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// randomChange changes c once, through the API or around it (never
// changing an entry in place: c shares them with its original).
func randomChange(r *rand.Rand, c *acl.Config) string {
	if r.IntN(2) == 0 || len(c.ACLs) == 0 {
		name, _ := randomOp(r, c)
		return name
	}
	a := c.ACLs[r.IntN(len(c.ACLs))]
	switch r.IntN(7) {
	case 0: // a random entry anywhere
		e := randomEntry(r, c, a.Family)
		e.Seq = r.IntN(100)
		a.Entries = slices.Insert(a.Entries, r.IntN(len(a.Entries)+1), e)
		return "insert"
	case 1: // a twin of an entry at a free seq, in order
		if len(a.Entries) == 0 {
			return "none"
		}
		e := a.Entries[r.IntN(len(a.Entries))].Clone()
		e.Seq = 1 + r.IntN(acl.MaxSeq)
		if i, ok := slices.BinarySearchFunc(a.Entries, e.Seq, func(x *acl.Entry, s int) int { return x.Seq - s }); !ok {
			a.Entries = slices.Insert(a.Entries, i, e)
		}
		return "twin"
	case 2: // an entry replaced by a changed copy
		if len(a.Entries) == 0 {
			return "none"
		}
		i := r.IntN(len(a.Entries))
		e := a.Entries[i].Clone()
		e.DstPort.Lo++
		if r.IntN(3) == 0 {
			e.Log = !e.Log
		}
		a.Entries[i] = e
		return "replace"
	case 3:
		if len(a.Entries) > 0 && r.IntN(4) == 0 {
			a.Entries[r.IntN(len(a.Entries))] = nil
			return "nil"
		}
		a.Entries = slices.Clone(a.Entries)
		slices.Reverse(a.Entries)
		return "reverse"
	case 4: // a time range gone from under its entries
		if len(c.TimeRanges) > 0 {
			c.TimeRanges = slices.Delete(c.TimeRanges, 0, 1)
		}
		return "drop time-range"
	case 5: // more new entries than are checked one by one
		for i := range 40 + r.IntN(2) {
			e := &acl.Entry{Action: acl.Permit, Proto: acl.ProtoTCP, DstPort: acl.PortMatch{Op: acl.PortEq, Lo: uint16(r.IntN(3))},
				Src: acl.NewHostAddr(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))}
			if a.Family == acl.IPv6 {
				e.Src = acl.NewHostAddr(netip.AddrFrom16([16]byte{0x20, 1, 0xd, 0xb8, 15: byte(i)}))
			}
			_ = c.AddEntry(a.Family, a.Name, e)
		}
		return "bulk"
	}
	e := &acl.Entry{Action: acl.Remark, Remark: fmt.Sprint("r", r.IntN(3))}
	_ = c.AddEntry(a.Family, a.Name, e)
	return "remark"
}

package nft

import (
	"errors"
	"testing"
)

func TestFake(t *testing.T) {
	var f Fake
	rs := &Ruleset{Table: "slxsh", Counters: []string{"a"}}
	if ok, _ := f.InSync(rs); ok {
		t.Error("empty fake in sync")
	}
	boom := errors.New("boom")
	f.FailNext = boom
	if err := f.Apply(rs); !errors.Is(err, ErrRefused) || !errors.Is(err, boom) {
		t.Errorf("FailNext: %v", err)
	}
	if f.Current != nil || f.Applied != 0 {
		t.Error("refused apply changed the fake")
	}
	if err := f.Apply(rs); err != nil {
		t.Fatal(err)
	}
	if ok, _ := f.InSync(&Ruleset{Table: "slxsh", Counters: []string{"a"}}); !ok {
		t.Error("equal ruleset not in sync")
	}
	f.Values = map[string]CounterValue{"a": {Packets: 2}, "b": {Packets: 9}}
	c, _ := f.Counters()
	if len(c) != 1 || c["a"].Packets != 2 {
		t.Errorf("counters: %v", c)
	}
	f.Set(nil)
	if ok, _ := f.InSync(rs); ok {
		t.Error("deleted table in sync")
	}
}

package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// diffMap compares the elements of a classification map in the kernel
// with those of s ("" when they are the same). A missing or changed
// element would send connections to other entries than the list says.
func diffMap(c *nftables.Conn, t *nftables.Table, s *Set) (string, error) {
	if s.Map.Counters {
		return diffCounterMap(c, t, s)
	}
	els, err := c.GetSetElements(kernelSet(t, s))
	if err != nil {
		return "", fmt.Errorf("list map %s: %w", s.Name, err)
	}
	want := make(map[string]bool, len(s.Map.Elems))
	for i := range s.Map.Elems {
		want[elemID(s.Map.kernelElem(&s.Map.Elems[i]))] = true
	}
	have := 0
	for _, el := range els {
		if el.IntervalEnd {
			continue
		}
		v, err := decodeVerdict(el.Val)
		if err != nil {
			return "map " + s.Name + ": an element has no verdict", nil
		}
		el.VerdictData = v
		if !want[elemID(el)] {
			return "map " + s.Name + ": an element differs", nil
		}
		have++
	}
	if have != len(want) {
		return fmt.Sprintf("map %s: %d elements, want %d", s.Name, have, len(want)), nil
	}
	return "", nil
}

// diffCounterMap is diffMap for a counter map: an element is its ranges
// and its counter.
func diffCounterMap(c *nftables.Conn, t *nftables.Table, s *Set) (string, error) {
	els, err := objectElements(c, t.Name, s.Name)
	if err != nil {
		return "", err
	}
	id := func(key, keyEnd []byte, obj string) string { return fmt.Sprintf("%x-%x:%s", key, keyEnd, obj) }
	want := make(map[string]bool, len(s.Map.Elems))
	for i := range s.Map.Elems {
		el := s.Map.kernelElem(&s.Map.Elems[i])
		want[id(el.Key, el.KeyEnd, string(el.Val))] = true
	}
	for _, el := range els {
		if !want[id(el.key, el.keyEnd, el.obj)] {
			return "map " + s.Name + ": an element differs", nil
		}
	}
	if len(els) != len(want) {
		return fmt.Sprintf("map %s: %d elements, want %d", s.Name, len(els), len(want)), nil
	}
	return "", nil
}

// elemID identifies a map element by its ranges and verdict.
func elemID(el nftables.SetElement) string {
	v := el.VerdictData
	return fmt.Sprintf("%x-%x:%d:%s", el.Key, el.KeyEnd, v.Kind, v.Chain)
}

// decodeVerdict reads the verdict of a map element as google/nftables
// v0.3.0 leaves it (the attributes inside NFTA_DATA_VERDICT).
func decodeVerdict(b []byte) (*expr.Verdict, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	ad.ByteOrder = binary.BigEndian
	v := &expr.Verdict{}
	code := false
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_VERDICT_CODE:
			v.Kind, code = expr.VerdictKind(int32(ad.Uint32())), true
		case unix.NFTA_VERDICT_CHAIN:
			v.Chain = ad.String()
		}
	}
	if err := ad.Err(); err != nil {
		return nil, err
	}
	if !code {
		return nil, fmt.Errorf("no verdict code")
	}
	return v, nil
}

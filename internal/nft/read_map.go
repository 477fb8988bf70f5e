package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// knownMaps marks in cur (read back) the maps of rs that the kernel holds
// with exactly rs's elements: Apply then leaves them as they are, where it
// would re-create a map whose elements it does not know (plan). A restart
// whose saved knowledge no longer holds, or Apply adopting a table that
// nft -f made, reads each map once and writes none.
func knownMaps(c *nftables.Conn, table string, cur *tableState, rs *Ruleset) error {
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	for _, s := range rs.Sets {
		if s.Map == nil {
			continue
		}
		if have, ok := cur.sets[s.Name]; !ok || !sameSet(have, kernelSet(t, s)) {
			continue
		}
		d, err := diffMap(c, t, s)
		if err != nil {
			return err
		}
		if d == "" {
			if cur.maps == nil {
				cur.maps = map[string]*VMap{}
			}
			cur.maps[s.Name] = s.Map
		}
	}
	return nil
}

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

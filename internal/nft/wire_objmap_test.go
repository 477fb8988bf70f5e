package nft

import (
	"encoding/binary"
	"testing"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/cli"
)

// attrs decodes the attributes of b by type (the last of each type).
func attrs(t *testing.T, b []byte) map[uint16][]byte {
	t.Helper()
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint16][]byte{}
	for ad.Next() {
		out[ad.Type()] = ad.Bytes()
	}
	return out
}

// What the library cannot encode, wire encodes as nft does (`nft
// --debug=netlink` of `map M { type K : counter; flags interval; }`, its
// elements and `counter name K map @M return`): the set is an object map
// of counters, each element names its counter, and the rule's objref
// takes its object from the map by the key in register 1.
func TestWireCounterMap(t *testing.T) {
	cfg, err := cli.ParseConfig(`ip access-list extended m
 seq 10 permit tcp host 10.0.0.1 any eq 22
 seq 20 permit tcp host 10.0.0.2 any eq 22 connlimit 2
 seq 30 permit tcp host 10.0.0.3 any eq 80
interface eth1
 ip access-group m in
`)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := Compile(cfg, Options{MapRun: 2})
	if err != nil {
		t.Fatal(err)
	}
	var cm *Set
	for _, s := range rs.Sets {
		if s.Kind == SetCounterMap {
			cm = s
		}
	}
	if cm == nil || len(cm.Map.Elems) != 2 {
		t.Fatalf("want a counter map of seq 10 and 30:\n%s", rs)
	}
	w := newWire(nil, 0)
	if _, err := queue(w, "slxsh", freshTable(), rs, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.ready(); err != nil {
		t.Fatal(err)
	}
	var set, elems, rule bool
	for _, off := range w.offs {
		m := w.buf[off:]
		m = m[:binary.NativeEndian.Uint32(m)]
		typ, data := binary.NativeEndian.Uint16(m[4:])&0xff, m[nlmsgHdr:]
		top := attrs(t, data[4:])
		switch {
		case typ == unix.NFT_MSG_NEWSET && string(top[unix.NFTA_SET_NAME]) == cm.Name+"\x00":
			set = true
			flags := binary.BigEndian.Uint32(top[unix.NFTA_SET_FLAGS])
			if want := uint32(unix.NFT_SET_OBJECT | unix.NFT_SET_INTERVAL | nftables.NFT_SET_CONCAT); flags != want {
				t.Errorf("set flags %#x, want %#x", flags, want)
			}
			if typ := top[unix.NFTA_SET_OBJ_TYPE]; len(typ) != 4 || binary.BigEndian.Uint32(typ) != unix.NFT_OBJECT_COUNTER {
				t.Errorf("set object type %x, want counter", typ)
			}
			if top[unix.NFTA_SET_DATA_TYPE] != nil {
				t.Error("an object map with a data type")
			}
		case typ == unix.NFT_MSG_NEWSETELEM && string(top[unix.NFTA_SET_ELEM_LIST_SET]) == cm.Name+"\x00":
			elems = true
			var got []string
			ad, _ := netlink.NewAttributeDecoder(top[unix.NFTA_SET_ELEM_LIST_ELEMENTS])
			for ad.Next() {
				el := attrs(t, ad.Bytes())
				if el[unix.NFTA_SET_ELEM_DATA] != nil {
					t.Error("an element with data")
				}
				got = append(got, string(el[unix.NFTA_SET_ELEM_OBJREF]))
			}
			if want := []string{"ip_m_in_10_matches\x00", "ip_m_in_30_matches\x00"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Errorf("elements name %q, want %q", got, want)
			}
		case typ == unix.NFT_MSG_NEWRULE:
			ad, _ := netlink.NewAttributeDecoder(top[unix.NFTA_RULE_EXPRESSIONS])
			for ad.Next() {
				e := attrs(t, ad.Bytes())
				if string(e[unix.NFTA_EXPR_NAME]) != "objref\x00" {
					continue
				}
				d := attrs(t, e[unix.NFTA_EXPR_DATA])
				if d[unix.NFTA_OBJREF_IMM_NAME] != nil {
					continue // a counter named in the rule
				}
				rule = true
				if sreg := d[unix.NFTA_OBJREF_SET_SREG]; len(sreg) != 4 || binary.BigEndian.Uint32(sreg) != 1 {
					t.Errorf("objref register %x, want 1", sreg)
				}
				if name := string(d[unix.NFTA_OBJREF_SET_NAME]); name != cm.Name+"\x00" {
					t.Errorf("objref map %q, want %q", name, cm.Name)
				}
			}
		}
	}
	if !set || !elems || !rule {
		t.Fatalf("messages seen: set %v, elements %v, rule %v", set, elems, rule)
	}
}

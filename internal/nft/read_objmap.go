package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Reading counter maps back. google/nftables v0.3.0 drops what makes a
// set an object map (NFT_SET_OBJECT, NFTA_SET_OBJ_TYPE) and the object an
// element names (NFTA_SET_ELEM_OBJREF), so both are read here, from the
// dumps themselves.

// objectMaps returns the names of table's sets that are maps of counter
// objects.
func objectMaps(c *nftables.Conn, table string) (map[string]bool, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_TABLE, table)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	answers, err := dump(c, unix.NFT_MSG_GETSET, attrs)
	if err != nil {
		return nil, fmt.Errorf("list sets: %w", err)
	}
	out := map[string]bool{}
	for _, a := range answers {
		ad, err := netlink.NewAttributeDecoder(a[4:])
		if err != nil {
			return nil, err
		}
		ad.ByteOrder = binary.BigEndian
		var name string
		var flags, typ uint32
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_SET_NAME:
				name = ad.String()
			case unix.NFTA_SET_FLAGS:
				flags = ad.Uint32()
			case unix.NFTA_SET_OBJ_TYPE:
				typ = ad.Uint32()
			}
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
		if flags&unix.NFT_SET_OBJECT != 0 && typ == unix.NFT_OBJECT_COUNTER {
			out[name] = true
		}
	}
	return out, nil
}

// objElem is an element of an object map as the kernel holds it.
type objElem struct {
	key, keyEnd []byte
	obj         string
}

// objectElements lists the elements of object map set of table.
func objectElements(c *nftables.Conn, table, set string) ([]objElem, error) {
	answers, err := setElements(c, table, set)
	if err != nil {
		return nil, fmt.Errorf("list map %s: %w", set, err)
	}
	var out []objElem
	for _, a := range answers {
		list := attrOf(a, unix.NFTA_SET_ELEM_LIST_ELEMENTS)
		ad, err := netlink.NewAttributeDecoder(list)
		if err != nil {
			return nil, err
		}
		for ad.Next() {
			el, err := decodeObjElem(ad.Bytes())
			if err != nil {
				return nil, err
			}
			out = append(out, el)
		}
		if err := ad.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func decodeObjElem(b []byte) (objElem, error) {
	var el objElem
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return el, err
	}
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_KEY:
			el.key = attrOf(append([]byte{0, 0, 0, 0}, ad.Bytes()...), unix.NFTA_DATA_VALUE)
		case nftables.NFTA_SET_ELEM_KEY_END:
			el.keyEnd = attrOf(append([]byte{0, 0, 0, 0}, ad.Bytes()...), unix.NFTA_DATA_VALUE)
		case unix.NFTA_SET_ELEM_OBJREF:
			el.obj = ad.String()
		}
	}
	return el, ad.Err()
}

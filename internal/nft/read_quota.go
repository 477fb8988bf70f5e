package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Quota use per key. The kernel dumps, with each element of a quota window
// set (SetQuota), its quota expression's bytes and what it has consumed
// (`nft list set` shows `quota over 100000 bytes used 4812 bytes`);
// google/nftables v0.3.0 decodes only counters on elements, so the dump
// is read here (one request, the attributes it needs).

// QuotaUse is the bytes one key of a quota window set has used.
type QuotaUse struct {
	Key         string // as Reservation keys are spelled
	Used, Quota uint64
}

// QuotaUsed returns, for each key of the quota window set s, the bytes
// its window has used of its quota.
func (a *Applier) QuotaUsed(s *Set) ([]QuotaUse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	answers, err := setElements(c, a.table, s.Name)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list set %s: %w", s.Name, err)
	}
	var out []QuotaUse
	for _, m := range answers {
		out = append(out, quotaUses(s, m[4:])...)
	}
	return out, nil
}

// quotaUses decodes the elements of one NEWSETELEM message.
func quotaUses(s *Set, data []byte) []QuotaUse {
	var out []QuotaUse
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return nil
	}
	for ad.Next() {
		if ad.Type() != unix.NFTA_SET_ELEM_LIST_ELEMENTS {
			continue
		}
		ad.Nested(func(list *netlink.AttributeDecoder) error {
			for list.Next() {
				list.Nested(func(el *netlink.AttributeDecoder) error {
					var u QuotaUse
					ok := false
					for el.Next() {
						switch el.Type() {
						case unix.NFTA_SET_ELEM_KEY:
							el.Nested(func(k *netlink.AttributeDecoder) error {
								for k.Next() {
									if k.Type() == unix.NFTA_DATA_VALUE {
										u.Key, ok = keyString(s, k.Bytes())
									}
								}
								return nil
							})
						case unix.NFTA_SET_ELEM_EXPR:
							el.Nested(func(e *netlink.AttributeDecoder) error { u.Used, u.Quota = quotaState(e); return nil })
						case nftables.NFTA_SET_ELEM_EXPRESSIONS:
							el.Nested(func(es *netlink.AttributeDecoder) error {
								for es.Next() {
									es.Nested(func(e *netlink.AttributeDecoder) error {
										if used, quota := quotaState(e); quota > 0 {
											u.Used, u.Quota = used, quota
										}
										return nil
									})
								}
								return nil
							})
						}
					}
					if ok && u.Quota > 0 {
						out = append(out, u)
					}
					return nil
				})
			}
			return nil
		})
	}
	return out
}

// quotaState reads a quota expression: (consumed, bytes); zeros for any
// other expression.
func quotaState(e *netlink.AttributeDecoder) (used, quota uint64) {
	name := ""
	var data []byte
	for e.Next() {
		switch e.Type() {
		case unix.NFTA_EXPR_NAME:
			name = e.String()
		case unix.NFTA_EXPR_DATA:
			data = e.Bytes()
		}
	}
	if name != "quota" {
		return 0, 0
	}
	d, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return 0, 0
	}
	for d.Next() {
		switch d.Type() {
		case unix.NFTA_QUOTA_BYTES:
			quota = binary.BigEndian.Uint64(d.Bytes())
		case unix.NFTA_QUOTA_CONSUMED:
			used = binary.BigEndian.Uint64(d.Bytes())
		}
	}
	return used, quota
}

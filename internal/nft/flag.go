package nft

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/slxsh/slxsh/internal/acl"
)

// This file is the agent's side of the sets it arms or reads: load-limit
// flags (SetLoad) and blocked sources (SetBlocked). For load flags the kernel
// cannot see what they flag (the load average), so the agent sets and
// clears their one element. (Added by the agent's author; additive.)

// SetFlag puts (on) or takes out (off) the family's nfproto element of the
// agent-armed set name in the applier's table, in one transaction, and only
// when the set does not already say so (a read does not commit anything, so
// calling it every second costs no transaction). It reports whether it
// changed the set.
func (a *Applier) SetFlag(name string, f acl.Family, on bool) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := nftables.New(a.opts...)
	if err != nil {
		return false, fmt.Errorf("open netlink: %w", err)
	}
	t := &nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}
	set, err := c.GetSetByName(t, name)
	if err != nil {
		return false, fmt.Errorf("find set %s: %w", name, err)
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return false, fmt.Errorf("list set %s: %w", name, err)
	}
	key := nfprotoByte(f)
	have := false
	for _, e := range elems {
		if len(e.Key) > 0 && e.Key[0] == key {
			have = true
		}
	}
	if have == on {
		return false, nil
	}
	el := []nftables.SetElement{{Key: []byte{key}}}
	if on {
		err = c.SetAddElements(set, el)
	} else {
		err = c.SetDeleteElements(set, el)
	}
	if err != nil {
		return false, fmt.Errorf("queue element of %s: %w", name, err)
	}
	if err := c.Flush(); err != nil {
		return false, fmt.Errorf("set %s: %w: %w", name, ErrRefused, err)
	}
	return true, nil
}

// nfprotoByte is the nf_proto value of a family (NFPROTO_IPV4, NFPROTO_IPV6).
func nfprotoByte(f acl.Family) byte {
	if f == acl.IPv6 {
		return 10
	}
	return 2
}

// Blocked lists the addresses in a blocked set (nft.SetBlocked) of the
// applier's table. A set that does not exist holds nothing.
func (a *Applier) Blocked(name string, f acl.Family) ([]netip.Addr, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := nftables.New(a.opts...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	set, err := c.GetSetByName(&nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}, name)
	if err != nil {
		return nil, nil
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return nil, fmt.Errorf("list set %s: %w", name, err)
	}
	var out []netip.Addr
	for _, e := range elems {
		if addr, ok := netip.AddrFromSlice(e.Key); ok && (addr.Is4() == (f == acl.IPv4)) {
			out = append(out, addr)
		}
	}
	return out, nil
}

// Unblock deletes addresses from a blocked set, or every element when
// addrs is nil, in one transaction. Addresses not in the set are skipped.
func (a *Applier) Unblock(name string, f acl.Family, addrs []netip.Addr) error {
	have, err := a.Blocked(name, f)
	if err != nil || len(have) == 0 {
		return err
	}
	in := map[netip.Addr]bool{}
	for _, h := range have {
		in[h] = true
	}
	var del []nftables.SetElement
	for _, ad := range addrs {
		if in[ad] {
			del = append(del, nftables.SetElement{Key: ad.AsSlice()})
		}
	}
	if addrs == nil {
		for _, h := range have {
			del = append(del, nftables.SetElement{Key: h.AsSlice()})
		}
	}
	if len(del) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := nftables.New(a.opts...)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	set, err := c.GetSetByName(&nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}, name)
	if err != nil {
		return fmt.Errorf("find set %s: %w", name, err)
	}
	if err := c.SetDeleteElements(set, del); err != nil {
		return fmt.Errorf("queue elements of %s: %w", name, err)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("unblock in %s: %w: %w", name, ErrRefused, err)
	}
	return nil
}

package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/slxsh/slxsh/internal/acl"
)

// This file is the agent's side of agent-armed sets (SetLoad): the kernel
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

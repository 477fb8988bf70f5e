package acl

import (
	"slices"
	"strings"
)

// Interface returns the interface block, or nil.
func (c *Config) Interface(kind IfKind, name string) *Interface {
	i, ok := c.ifIndex(kind, name)
	if !ok {
		return nil
	}
	return c.Interfaces[i]
}

func (c *Config) ifIndex(kind IfKind, name string) (int, bool) {
	return slices.BinarySearchFunc(c.Interfaces, &Interface{Kind: kind, Name: name}, compareInterfaces)
}

// compareInterfaces orders interfaces as the running-config lists them:
// management, then ethernet by slot and port, then Linux names.
func compareInterfaces(a, b *Interface) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	if a.Kind == IfEthernet {
		s1, p1, ok1 := splitSlotPort(a.Name)
		s2, p2, ok2 := splitSlotPort(b.Name)
		if ok1 && ok2 {
			if s1 != s2 {
				return s1 - s2
			}
			return p1 - p2
		}
	}
	return strings.Compare(a.Name, b.Name)
}

// EnsureInterface returns the interface block, creating it if needed. It
// fails on a malformed name (ethernet must be S/P, management must be 0).
func (c *Config) EnsureInterface(kind IfKind, name string) (*Interface, error) {
	if err := CheckInterfaceName(kind, name); err != nil {
		return nil, err
	}
	i, ok := c.ifIndex(kind, name)
	if ok {
		return c.Interfaces[i], nil
	}
	ifc := &Interface{Kind: kind, Name: name}
	c.Interfaces = slices.Insert(c.Interfaces, i, ifc)
	return ifc, nil
}

// DeleteInterface removes an interface block (`no interface ...`).
func (c *Config) DeleteInterface(kind IfKind, name string) error {
	i, ok := c.ifIndex(kind, name)
	if !ok {
		return errorf("interface %s does not exist", InterfaceLabel(kind, name))
	}
	c.Interfaces = deleteAt(c.Interfaces, i)
	return nil
}

// SetAccessGroup applies an ACL to an interface in a direction. The ACL must
// exist; an `in` binding refuses an ACL with user/uid entries. It replaces
// any ACL of that family and direction on the interface, and creates the
// interface block if needed.
func (c *Config) SetAccessGroup(kind IfKind, ifname string, f Family, d Direction, acl string) error {
	if err := CheckInterfaceName(kind, ifname); err != nil {
		return err
	}
	if d != In && d != Out {
		return errorf("unknown direction %d", int(d))
	}
	a, err := c.mustACL(f, acl)
	if err != nil {
		return err
	}
	if e, kind, other := wrongDirection(a, d); e != nil {
		return errorf("access-list %q has %s entries (seq %d), which only apply %s (access-group ... %s)", acl, kind, e.Seq, other.Bound(), other)
	}
	ifc, err := c.EnsureInterface(kind, ifname)
	if err != nil {
		return err
	}
	ifc.Groups[f][d] = acl
	return nil
}

// wrongDirection returns the first entry of a that cannot apply in
// direction d, what kind of entry it is, and the direction it needs:
// user/uid entries only apply out, refuse message entries only in.
func wrongDirection(a *ACL, d Direction) (e *Entry, kind string, other Direction) {
	if d == In {
		return firstEntry(a, func(e *Entry) bool { return e.Owner != nil }), "user/uid", Out
	}
	return firstEntry(a, func(e *Entry) bool { return e.Refuse.Kind == RefuseMessage }), "refuse message", In
}

func firstEntry(a *ACL, pred func(*Entry) bool) *Entry {
	for _, e := range a.Entries {
		if e != nil && pred(e) { // nil: in a config Validate is rejecting
			return e
		}
	}
	return nil
}

// ClearAccessGroup removes `ip access-group ACL DIR` from an interface; the
// named ACL must be the one applied ("" removes whichever is applied).
func (c *Config) ClearAccessGroup(kind IfKind, ifname string, f Family, d Direction, acl string) error {
	ifc := c.Interface(kind, ifname)
	label := InterfaceLabel(kind, ifname)
	if ifc == nil {
		return errorf("interface %s does not exist", label)
	}
	if d != In && d != Out || f != IPv4 && f != IPv6 {
		return errorf("unknown family or direction")
	}
	cur := ifc.Groups[f][d]
	if cur == "" {
		return errorf("no %s access-group is applied to interface %s %s", f, label, d)
	}
	if acl != "" && cur != acl {
		return errorf("access-list %q is not applied to interface %s %s", acl, label, d)
	}
	ifc.Groups[f][d] = ""
	return nil
}

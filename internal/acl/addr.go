package acl

import (
	"fmt"
	"net/netip"
)

// AnyAddr is the address match `any`.
var AnyAddr = Addr{}

// NewPrefixAddr returns the canonical match for a prefix: host bits are
// cleared, and a /0 prefix becomes `any`. A full-length prefix is `host A`.
func NewPrefixAddr(p netip.Prefix) Addr {
	p = p.Masked()
	if p.Bits() == 0 {
		return AnyAddr
	}
	return Addr{Kind: AddrPrefix, Prefix: p}
}

// NewHostAddr returns the match `host A`.
func NewHostAddr(a netip.Addr) Addr {
	return NewPrefixAddr(netip.PrefixFrom(a, a.BitLen()))
}

// NewWildcardAddr returns the canonical match for a Cisco `BASE WILDCARD`
// pair: a contiguous wildcard (0.0.0.255) becomes the prefix form
// (BASE/24, host bits cleared; 0.0.0.0 is `host`, all ones is `any`); a
// non-contiguous one stays AddrWildcard with the wildcard bits cleared in
// Base. Both addresses must be of the same family.
func NewWildcardAddr(base, wildcard netip.Addr) (Addr, error) {
	if !base.IsValid() || !wildcard.IsValid() {
		return Addr{}, errorf("invalid address")
	}
	if base.Zone() != "" || wildcard.Zone() != "" {
		return Addr{}, errorf("address %s has a zone", base)
	}
	if base.Is4() != wildcard.Is4() {
		return Addr{}, errorf("wildcard %s is not of the family of %s", wildcard, base)
	}
	if n, ok := wildcardPrefixLen(wildcard); ok {
		return NewPrefixAddr(netip.PrefixFrom(base, n)), nil
	}
	return Addr{Kind: AddrWildcard, Base: clearBits(base, wildcard), Wildcard: wildcard}, nil
}

// wildcardPrefixLen returns the prefix length of a contiguous wildcard
// (zeros followed by ones), or false.
func wildcardPrefixLen(w netip.Addr) (int, bool) {
	b := w.AsSlice()
	n := 0
	seenOne := false
	for _, x := range b {
		for i := 7; i >= 0; i-- {
			one := x&(1<<i) != 0
			if one {
				seenOne = true
			} else if seenOne {
				return 0, false
			} else {
				n++
			}
		}
	}
	return n, true
}

func clearBits(a, w netip.Addr) netip.Addr {
	ab, wb := a.AsSlice(), w.AsSlice()
	for i := range ab {
		ab[i] &^= wb[i]
	}
	r, _ := netip.AddrFromSlice(ab)
	return r
}

// IsHost reports whether the match is a single address (`host A`).
func (a Addr) IsHost() bool {
	return a.Kind == AddrPrefix && a.Prefix.IsValid() && a.Prefix.IsSingleIP()
}

// String renders the match as in the running-config: `any`, `host A`,
// `A/LEN` or `A WILDCARD`.
func (a Addr) String() string {
	switch a.Kind {
	case AddrAny:
		return "any"
	case AddrPrefix:
		if a.IsHost() {
			return "host " + a.Prefix.Addr().String()
		}
		return a.Prefix.String()
	case AddrWildcard:
		return a.Base.String() + " " + a.Wildcard.String()
	}
	return fmt.Sprintf("Addr(%d)", int(a.Kind))
}

// checkAddr validates a match against the family of its ACL; what names
// the side ("source" or "destination").
func checkAddr(f Family, what string, a Addr) error {
	switch a.Kind {
	case AddrAny:
		if a != AnyAddr {
			return errorf("%s any carries an address", what)
		}
	case AddrPrefix:
		p := a.Prefix
		if !p.IsValid() {
			return errorf("%s prefix is invalid", what)
		}
		if err := checkFamily(f, what, p.Addr()); err != nil {
			return err
		}
		if p.Bits() == 0 {
			return errorf("%s prefix %s must be written any", what, p)
		}
		if p != p.Masked() {
			return errorf("%s prefix %s has host bits set", what, p)
		}
		if a.Base.IsValid() || a.Wildcard.IsValid() {
			return errorf("%s prefix %s carries a wildcard", what, p)
		}
	case AddrWildcard:
		if !a.Base.IsValid() || !a.Wildcard.IsValid() {
			return errorf("%s wildcard is invalid", what)
		}
		if err := checkFamily(f, what, a.Base); err != nil {
			return err
		}
		if err := checkFamily(f, what+" wildcard", a.Wildcard); err != nil {
			return err
		}
		if _, ok := wildcardPrefixLen(a.Wildcard); ok {
			return errorf("%s wildcard %s is contiguous and must be written as a prefix", what, a.Wildcard)
		}
		if clearBits(a.Base, a.Wildcard) != a.Base {
			return errorf("%s %s has wildcard bits set", what, a.Base)
		}
		if a.Prefix.IsValid() {
			return errorf("%s wildcard carries a prefix", what)
		}
	default:
		return errorf("%s has unknown form %d", what, int(a.Kind))
	}
	return nil
}

func checkFamily(f Family, what string, a netip.Addr) error {
	if a.Zone() != "" {
		return errorf("%s %s has a zone", what, a)
	}
	if f == IPv4 && !a.Is4() {
		return errorf("%s %s is not an IPv4 address", what, a)
	}
	if f == IPv6 && !a.Is6() {
		return errorf("%s %s is not an IPv6 address", what, a)
	}
	return nil
}

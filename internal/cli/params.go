package cli

import (
	"fmt"
	"math"
	"net/netip"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// Typed parameters: each accepts a token and converts it for its setter.

// parseDec parses a plain decimal number (no sign); leading zeros allowed.
func parseDec(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' || n > (math.MaxInt64-9)/10 {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, true
}

// intArg is an integer in [lo, hi], shown as <lo-hi>.
func intArg[T any](lo, hi int64, help string, set func(*T, int)) *atom {
	return param(fmt.Sprintf("<%d-%d>", lo, hi), help,
		func(s string) bool { n, ok := parseDec(s); return ok && n >= lo && n <= hi },
		func(a *T, s string) { n, _ := parseDec(s); set(a, int(n)) })
}

// wordArg is the name of an ACL or a time range (letters, digits, '_',
// '-' and '.', starting with a letter or digit); TAB completes it from the
// backend's names of that kind (Session.Complete).
func wordArg[T any](kind nameKind, help string, set func(*T, string)) *atom {
	a := param("WORD", help, acl.ValidName, set)
	a.names = kind
	return a
}

// nameKind is what a WORD names, for completion.
type nameKind int

const (
	noNames        nameKind = iota
	aclNames                // an access list of the family the line names (both when it names none)
	timeRangeNames          // a time range
)

// lineArg is the rest of the line.
func lineArg[T any](help string, set func(*T, string)) *atom {
	a := param("LINE", help, func(string) bool { return true }, set)
	a.rest = true
	return a
}

func parseAddr(s string, f acl.Family) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	if f == acl.IPv4 {
		return a, a.Is4()
	}
	return a, a.Is6() && !a.Is4In6()
}

func parsePrefix(s string, f acl.Family) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	_, ok := parseAddr(p.Addr().String(), f)
	return p, ok
}

// addrName is how an address parameter shows in help.
func addrName(f acl.Family, prefix bool) string {
	n := "A.B.C.D"
	if f == acl.IPv6 {
		n = "X:X::X"
	}
	if prefix {
		n += "/M"
	}
	return n
}

// addrArg is an address of family f.
func addrArg[T any](f acl.Family, help string, set func(*T, netip.Addr)) *atom {
	return param(addrName(f, false), help,
		func(s string) bool { _, ok := parseAddr(s, f); return ok },
		func(a *T, s string) { x, _ := parseAddr(s, f); set(a, x) })
}

// anyAddrArg is an IPv4 or IPv6 address.
func anyAddrArg[T any](help string, set func(*T, netip.Addr)) *atom {
	return param("A.B.C.D|X:X::X", help,
		func(s string) bool { a, err := netip.ParseAddr(s); return err == nil && a.Zone() == "" },
		func(a *T, s string) { x, _ := netip.ParseAddr(s); set(a, x) })
}

// prefixArg is an address/length of family f.
func prefixArg[T any](f acl.Family, help string, set func(*T, netip.Prefix)) *atom {
	return param(addrName(f, true), help,
		func(s string) bool { _, ok := parsePrefix(s, f); return ok },
		func(a *T, s string) { p, _ := parsePrefix(s, f); set(a, p) })
}

// parseHHMM parses HH:MM into minutes since midnight.
func parseHHMM(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, false
	}
	hh, ok1 := parseDec(h)
	mm, ok2 := parseDec(m)
	if !ok1 || !ok2 || hh > 23 || mm > 59 {
		return 0, false
	}
	return int(hh*60 + mm), true
}

// timeArg is a time of day HH:MM.
func timeArg[T any](help string, set func(*T, int)) *atom {
	return param("HH:MM", help,
		func(s string) bool { _, ok := parseHHMM(s); return ok },
		func(a *T, s string) { n, _ := parseHHMM(s); set(a, n) })
}

var monthNames = []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}

var monthLong = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}

func parseMonth(s string) (int, bool) {
	s = strings.ToLower(s)
	for i := range monthNames {
		if s == monthNames[i] || s == monthLong[i] {
			return i + 1, true
		}
	}
	return 0, false
}

// monthArg is a month name (Jan or January, any case).
func monthArg[T any](help string, set func(*T, int)) *atom {
	return param("MON", help,
		func(s string) bool { _, ok := parseMonth(s); return ok },
		func(a *T, s string) { n, _ := parseMonth(s); set(a, n) })
}

// decimalArg is a load average X.YY (0.01-999.99).
func decimalArg[T any](help string, set func(*T, int)) *atom {
	return param("X.YY", help,
		func(s string) bool { _, err := acl.ParseLoadLimit(s); return err == nil },
		func(a *T, s string) { l, _ := acl.ParseLoadLimit(s); set(a, l.Hundredths) })
}

// quotedArg is a "quoted string".
func quotedArg[T any](help string, set func(*T, string)) *atom {
	return param(`"TEXT"`, help,
		func(s string) bool { _, err := acl.UnquoteMessage(s); return err == nil },
		func(a *T, s string) { u, _ := acl.UnquoteMessage(s); set(a, u) })
}

// slotPortArg is an ethernet S/P.
func slotPortArg[T any](help string, set func(*T, string)) *atom {
	return param("S/P", help,
		func(s string) bool { return acl.CheckInterfaceName(acl.IfEthernet, s) == nil },
		set)
}

// ifNameArg is a Linux interface name.
func ifNameArg[T any](help string, set func(*T, string)) *atom {
	return param("IFNAME", help, acl.ValidLinuxIfName, set)
}

// portArg is a port: a number 0-65535 or a service name.
func portArg[T any](set func(*T, uint16)) node {
	nodes := []node{intArg(0, 65535, "Port number", func(a *T, n int) { set(a, uint16(n)) })}
	for _, name := range acl.ServiceNames() {
		p, _ := acl.ServicePort(name)
		nodes = append(nodes, kwSet(name, fmt.Sprintf("Port %d", p), func(a *T) { set(a, p) }))
	}
	return alt(nodes...)
}

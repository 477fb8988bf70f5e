package acl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// String returns the family keyword: "ip" or "ipv6".
func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ip"
}

// Bits returns the address length of the family: 32 or 128.
func (f Family) Bits() int {
	if f == IPv6 {
		return 128
	}
	return 32
}

// String returns the direction keyword: "in" or "out".
func (d Direction) String() string {
	if d == Out {
		return "out"
	}
	return "in"
}

// Bound is the direction in words: inbound, outbound.
func (d Direction) Bound() string { return d.String() + "bound" }

// MaxNameLen is the longest access-list or time-range name.
const MaxNameLen = 63

// ValidName reports whether s can name an access list or a time range:
// 1 to 63 characters, letters, digits, '_', '-' and '.', starting with a
// letter or a digit.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
		case i > 0 && (c == '_' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// ValidHostname reports whether s can be a hostname: 1 to 63 letters, digits,
// '-', '_' and '.', starting with a letter or a digit.
func ValidHostname(s string) bool { return ValidName(s) }

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// ValidLinuxIfName reports whether s can name a Linux interface in the
// configuration: 1-15 letters, digits, '-', '_' and '.', not "." or "..",
// and not a prefix of the keywords "management" or "ethernet" (which the
// shell would read as those keywords, so the running-config would not
// replay). Linux allows more, but real names keep to these.
func ValidLinuxIfName(s string) bool {
	if len(s) == 0 || len(s) > 15 || s == "." || s == ".." {
		return false
	}
	if strings.HasPrefix("management", s) || strings.HasPrefix("ethernet", s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// CheckInterfaceName returns an error unless name is well formed for kind:
// "0" for management, "S/P" (decimal numbers) for ethernet, a Linux
// interface name otherwise.
func CheckInterfaceName(kind IfKind, name string) error {
	switch kind {
	case IfManagement:
		if name != "0" {
			return errorf("management interface must be 0, not %q", name)
		}
	case IfEthernet:
		if _, _, ok := splitSlotPort(name); !ok {
			return errorf("ethernet interface %q must be SLOT/PORT", name)
		}
	case IfLinux:
		if !ValidLinuxIfName(name) {
			return errorf("%q is not a valid interface name", name)
		}
	default:
		return errorf("unknown interface kind %d", int(kind))
	}
	return nil
}

// splitSlotPort parses "S/P" into its numbers (0-999 each, no leading zeros).
func splitSlotPort(name string) (slot, port int, ok bool) {
	s, p, found := strings.Cut(name, "/")
	if !found {
		return 0, 0, false
	}
	slot, ok1 := smallNumber(s)
	port, ok2 := smallNumber(p)
	return slot, port, ok1 && ok2
}

func smallNumber(s string) (int, bool) {
	if len(s) == 0 || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// InterfaceLabel returns how an interface is named in commands and
// messages: "management 0", "ethernet 0/1" or "eth0".
func InterfaceLabel(kind IfKind, name string) string {
	switch kind {
	case IfManagement:
		return "management " + name
	case IfEthernet:
		return "ethernet " + name
	}
	return name
}

// Label returns the interface as named in commands: "management 0",
// "ethernet 0/1" or "eth0".
func (i *Interface) Label() string { return InterfaceLabel(i.Kind, i.Name) }

// services maps the service names accepted for ports to their numbers
// (the IOS keyword list plus a few common modern services).
var services = map[string]uint16{
	"bgp": 179, "biff": 512, "bootpc": 68, "bootps": 67, "chargen": 19,
	"cmd": 514, "daytime": 13, "discard": 9, "dnsix": 195, "domain": 53,
	"echo": 7, "exec": 512, "finger": 79, "ftp": 21, "ftp-data": 20,
	"gopher": 70, "hostname": 101, "http": 80, "https": 443, "ident": 113,
	"imap": 143, "imaps": 993, "irc": 194, "isakmp": 500, "kerberos": 88,
	"klogin": 543, "kshell": 544, "ldap": 389, "ldaps": 636, "login": 513,
	"lpd": 515, "mobile-ip": 434, "mysql": 3306, "nameserver": 42,
	"netbios-dgm": 138, "netbios-ns": 137, "netbios-ss": 139, "nntp": 119,
	"ntp": 123, "pim-auto-rp": 496, "pop2": 109, "pop3": 110, "pop3s": 995,
	"postgresql": 5432, "rdp": 3389, "rip": 520, "smtp": 25, "smtps": 465,
	"snmp": 161, "snmptrap": 162, "ssh": 22, "submission": 587,
	"sunrpc": 111, "syslog": 514, "tacacs": 49, "talk": 517, "telnet": 23,
	"tftp": 69, "time": 37, "uucp": 540, "who": 513, "whois": 43, "www": 80,
	"xdmcp": 177,
}

// ServicePort returns the port number of a service name (`ssh` is 22).
func ServicePort(name string) (uint16, bool) {
	p, ok := services[name]
	return p, ok
}

// ServiceNames returns every service name ServicePort knows, sorted.
func ServiceNames() []string {
	names := make([]string, 0, len(services))
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ProtoNames returns the protocol keywords of a family, in help order:
// ip (ipv6), tcp, udp, icmp, sctp.
func ProtoNames(f Family) []string {
	return []string{f.String(), "tcp", "udp", "icmp", "sctp"}
}

// ProtoByName returns the protocol number for a keyword of the family
// (`ip` in IPv4 and `ipv6` in IPv6 ACLs give ProtoAny; `icmp` is 1 in IPv4
// and 58 in IPv6) or for a decimal number 0-255.
func ProtoByName(f Family, name string) (int, bool) {
	switch name {
	case f.String():
		return ProtoAny, true
	case "tcp":
		return ProtoTCP, true
	case "udp":
		return ProtoUDP, true
	case "sctp":
		return ProtoSCTP, true
	case "icmp":
		if f == IPv6 {
			return ProtoICMPv6, true
		}
		return ProtoICMP, true
	}
	n, ok := smallDecimal(name, 255)
	return n, ok
}

// smallDecimal parses a plain decimal number 0..max (no sign, no leading
// zeros except "0").
func smallDecimal(s string, max int) (int, bool) {
	if len(s) == 0 || len(s) > 10 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}

// ProtoName returns how a protocol prints in an ACL of the family: its
// keyword when it has one, else its number.
func ProtoName(f Family, p int) string {
	switch {
	case p == ProtoAny:
		return f.String()
	case p == ProtoTCP:
		return "tcp"
	case p == ProtoUDP:
		return "udp"
	case p == ProtoSCTP:
		return "sctp"
	case p == ProtoICMP && f == IPv4, p == ProtoICMPv6 && f == IPv6:
		return "icmp"
	}
	return strconv.Itoa(p)
}

// HasPorts reports whether protocol p takes port matches (tcp, udp, sctp).
func HasPorts(p int) bool { return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP }

var periodNames = [...]string{Second: "second", Minute: "minute", Hour: "hour", Day: "day"}

// String returns the period keyword: second, minute, hour or day.
func (p Period) String() string {
	if p < 0 || int(p) >= len(periodNames) {
		return fmt.Sprintf("Period(%d)", int(p))
	}
	return periodNames[p]
}

// Seconds returns the length of the period in seconds.
func (p Period) Seconds() int {
	switch p {
	case Minute:
		return 60
	case Hour:
		return 3600
	case Day:
		return 86400
	}
	return 1
}

// PeriodByName returns the period for second, minute, hour or day.
func PeriodByName(s string) (Period, bool) {
	for i, n := range periodNames {
		if n == s {
			return Period(i), true
		}
	}
	return 0, false
}

var unitNames = [...]string{Bytes: "bytes", KBytes: "kbytes", MBytes: "mbytes", GBytes: "gbytes"}

// String returns the unit keyword: bytes, kbytes, mbytes or gbytes.
func (u ByteUnit) String() string {
	if u < 0 || int(u) >= len(unitNames) {
		return fmt.Sprintf("ByteUnit(%d)", int(u))
	}
	return unitNames[u]
}

// Size returns the number of bytes in one unit (kbytes are 1024 bytes).
func (u ByteUnit) Size() uint64 { return 1 << (10 * uint(u)) }

// ByteUnitByName returns the unit for bytes, kbytes, mbytes or gbytes.
func ByteUnitByName(s string) (ByteUnit, bool) {
	for i, n := range unitNames {
		if n == s {
			return ByteUnit(i), true
		}
	}
	return 0, false
}

// Bytes returns the quota in bytes.
func (q *Quota) Bytes() uint64 { return q.N * q.Unit.Size() }

var daySpecNames = [...]string{
	Daily: "daily", Weekdays: "weekdays", Weekend: "weekend",
	Monday: "monday", Tuesday: "tuesday", Wednesday: "wednesday",
	Thursday: "thursday", Friday: "friday", Saturday: "saturday", Sunday: "sunday",
}

// String returns the day keyword of a periodic clause.
func (d DaySpec) String() string {
	if d < 0 || int(d) >= len(daySpecNames) {
		return fmt.Sprintf("DaySpec(%d)", int(d))
	}
	return daySpecNames[d]
}

// DaySpecByName returns the day specification for daily, weekdays, weekend,
// monday ... sunday.
func DaySpecByName(s string) (DaySpec, bool) {
	for i, n := range daySpecNames {
		if n == s {
			return DaySpec(i), true
		}
	}
	return 0, false
}

// DaySpecNames returns the periodic day keywords in help order.
func DaySpecNames() []string { return append([]string(nil), daySpecNames[:]...) }

var monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// MonthByName returns the month number 1-12 for its three-letter English
// abbreviation, in any case ("Jan", "jan").
func MonthByName(s string) (int, bool) {
	for i, n := range monthNames {
		if strings.EqualFold(n, s) {
			return i + 1, true
		}
	}
	return 0, false
}

// MonthNames returns the month abbreviations Jan ... Dec.
func MonthNames() []string { return append([]string(nil), monthNames[:]...) }

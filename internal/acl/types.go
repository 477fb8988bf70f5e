// Package acl is the slxsh configuration model: access lists with their
// entries and limits, interfaces with access-groups, time ranges and the
// global settings. It validates configurations and formats them as the
// canonical running-config. The grammar that reads the language lives in
// internal/cli (one declarative command table serves the shell, scripts and
// config files); acl holds no parser of its own.
//
// Everything here is pure: no I/O, no kernel.
package acl

import "net/netip"

// Family is the address family of an access list.
type Family int

// Address families.
const (
	IPv4 Family = iota
	IPv6
)

// Direction is the direction an access-group filters.
type Direction int

// Directions of an access-group.
const (
	In Direction = iota
	Out
)

// SessionPolicy says what happens to open sessions that a new configuration
// would not admit (SPEC §4, connlimit existing-sessions).
type SessionPolicy int

// Existing-session policies.
const (
	Keep SessionPolicy = iota // default
	Reset
)

// Config is a whole slxsh configuration. Slices are kept sorted (ACLs by
// family then name, interfaces by kind then name, time ranges by name) so
// that two equal configurations are reflect.DeepEqual.
type Config struct {
	Hostname         string // "" means the Linux hostname
	ExistingSessions SessionPolicy
	TimeRanges       []*TimeRange
	ACLs             []*ACL
	Interfaces       []*Interface
}

// ACL is a named extended access list of one family.
type ACL struct {
	Name    string
	Family  Family
	Entries []*Entry // sorted by Seq, unique Seq
}

// Action is what an entry does with a matching connection.
type Action int

// Entry actions. Remark entries carry only Seq and Remark.
const (
	Permit Action = iota
	Deny
	HardDrop
	Remark
)

// ProtoAny is the Proto of an entry that matches every protocol
// (`ip` in IPv4 ACLs, `ipv6` in IPv6 ACLs).
const ProtoAny = -1

// Well-known protocol numbers.
const (
	ProtoICMP   = 1
	ProtoTCP    = 6
	ProtoUDP    = 17
	ProtoICMPv6 = 58
	ProtoSCTP   = 132
)

// Entry is one ACL line. An entry is immutable once it is in a config:
// clones share it (Config.Clone), and the mutation API replaces entries
// rather than changing them.
type Entry struct {
	Seq    int // 1-65535
	Action Action
	Remark string // only for Action == Remark

	Proto   int // IP protocol number 0-255, or ProtoAny; in IPv6 ACLs `icmp` is 58
	Src     Addr
	SrcPort PortMatch // only for tcp, udp, sctp
	Dst     Addr
	DstPort PortMatch

	// Connlimits are the entry's connlimits, one per key, sorted by key
	// (SortConnlimits): a connection is admitted only if each admits it.
	Connlimits []Connlimit
	Rate       *Rate
	Quota      *Quota
	BlockFor   *BlockFor
	TimeRange  string     // name of a TimeRange, "" for always
	LoadLimit  *LoadLimit // nil: no load limit
	Owner      *Owner     // user NAME | uid N; outbound only
	Refuse     Refuse
	Log        bool
	Count      bool // accepted for compatibility; counters are always kept
}

// AddrKind tells the form of an address match.
type AddrKind int

// Address forms. Contiguous Cisco wildcards are stored as prefixes;
// `host A` is a full-length prefix.
const (
	AddrAny AddrKind = iota
	AddrPrefix
	AddrWildcard // non-contiguous Cisco wildcard: Base with Wildcard bits ignored
)

// Addr is a source or destination match.
type Addr struct {
	Kind     AddrKind
	Prefix   netip.Prefix // AddrPrefix: masked (no host bits set)
	Base     netip.Addr   // AddrWildcard: base address, wildcard bits cleared
	Wildcard netip.Addr   // AddrWildcard: Cisco wildcard (1 bits are "don't care")
}

// PortOp is a port operator.
type PortOp int

// Port operators. PortNone means no port match.
const (
	PortNone PortOp = iota
	PortEq
	PortNeq
	PortLt
	PortGt
	PortRange
)

// PortMatch is `eq P`, `neq P`, `lt P`, `gt P` or `range Lo Hi`.
// For single-port operators only Lo is used.
type PortMatch struct {
	Op     PortOp
	Lo, Hi uint16
}

// KeyKind says what a limit counts by.
type KeyKind int

// Limit keys. PerSource is the default (SLX).
const (
	PerSource KeyKind = iota
	PerPrefix
	PerDestination
	Total
)

// Connlimit is `connlimit N [per-source | per-prefix LEN | per-destination | total]`.
type Connlimit struct {
	N         int // 0 always refuses
	Key       KeyKind
	PrefixLen int // only for PerPrefix
}

// Period is the time unit of a rate or quota.
type Period int

// Periods.
const (
	Second Period = iota
	Minute
	Hour
	Day
)

// Rate is `rate N per PERIOD [burst B] [per-source | total]`.
type Rate struct {
	N     int
	Per   Period
	Burst int     // 0: no burst given
	Key   KeyKind // PerSource or Total
}

// ByteUnit is the unit a quota was written in; kept so that the
// running-config shows what the user typed.
type ByteUnit int

// Quota units.
const (
	Bytes ByteUnit = iota
	KBytes
	MBytes
	GBytes
)

// Quota is `quota N UNIT per PERIOD [per-source]`.
type Quota struct {
	N         uint64 // in Unit
	Unit      ByteUnit
	Per       Period // Minute, Hour or Day
	PerSource bool
}

// BlockFor is `block-for SECONDS [flush]`.
type BlockFor struct {
	Seconds int
	Flush   bool
}

// LoadLimit is `load-limit X.YY`, kept in hundredths.
type LoadLimit struct {
	Hundredths int
}

// Owner is `user NAME` or `uid N`.
type Owner struct {
	User string // "" when given as uid
	UID  int    // meaningful when User == ""
}

// RefuseKind is how an over-limit or denied connection is refused.
type RefuseKind int

// Refusal kinds. RefuseDefault is a TCP reset (ICMP unreachable for non-TCP)
// and is not printed.
const (
	RefuseDefault RefuseKind = iota
	RefuseDrop
	RefuseReset
	RefuseMessage
)

// Refuse is `refuse {drop | reset | message "TEXT"}`.
type Refuse struct {
	Kind    RefuseKind
	Message string // RefuseMessage only, without the CRLF
}

// IfKind is the kind of an interface name.
type IfKind int

// Interface kinds, in the order the running-config lists them.
const (
	IfManagement IfKind = iota // `management 0`
	IfEthernet                 // `ethernet S/P`
	IfLinux                    // any other word: a Linux interface name
)

// Interface is an interface block with its access-groups.
type Interface struct {
	Kind IfKind
	Name string // "0" for management 0, "0/1" for ethernet 0/1, "eth0"
	// Groups[family][direction] is the ACL name, "" when none.
	Groups [2][2]string
}

// Day sets of a periodic time range.
type DaySpec int

// Periodic day specifications.
const (
	Daily DaySpec = iota
	Weekdays
	Weekend
	Monday
	Tuesday
	Wednesday
	Thursday
	Friday
	Saturday
	Sunday
)

// Periodic is `periodic DAYS HH:MM to HH:MM`; times are minutes since local
// midnight. End before Start spans midnight.
type Periodic struct {
	Days       DaySpec
	Start, End int
}

// DateTime is a local civil time with minute precision (`HH:MM DD MON YYYY`).
type DateTime struct {
	Year, Month, Day, Hour, Minute int
}

// Absolute is `absolute [start T] [end T]`; nil pointers are open ends.
type Absolute struct {
	Start, End *DateTime
}

// TimeRange is a named time range.
type TimeRange struct {
	Name     string
	Periodic []Periodic
	Absolute *Absolute
}

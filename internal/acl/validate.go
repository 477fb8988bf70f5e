package acl

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Bounds of entry options. They are what the compiler and the kernel handle
// comfortably; the shell's help shows them.
const (
	MaxConnlimit   = 65535         // connlimit N: 0-65535 (0 always refuses)
	MaxRate        = 1_000_000_000 // rate N: 1-MaxRate per period
	MaxBurst       = 1_000_000_000 // burst B: 1-MaxBurst (0 in the model: no burst)
	MaxConnlimits  = 4             // connlimits on one entry, each with its own key
	MaxQuotaBytes  = 1 << 60       // quota N UNIT: at most 1 EiB
	MaxBlockFor    = 86400         // block-for SECONDS: 1-86400
	MinLoadLimit   = 1             // load-limit in hundredths: 0.01
	MaxLoadLimit   = 99999         // load-limit in hundredths: 999.99
	MaxUID         = math.MaxUint32 - 1
	MaxRemarkLen   = 255
	MaxMessageLen  = 200
	maxUserNameLen = 32
)

var userNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*\$?$`)

// ValidUserName reports whether s can be a Linux user name for `user NAME`.
func ValidUserName(s string) bool {
	return len(s) <= maxUserNameLen && userNameRE.MatchString(s)
}

// ValidateEntry checks one entry as it would sit in the access list named
// acl of family f within c: ranges, forms, the options' combinations, the
// time-range's existence, and user/uid against the list's `in` bindings.
// c may be nil (no cross-references checked); acl may be "" (bindings not
// checked). It returns the first problem as an *Error without Path.
func ValidateEntry(c *Config, f Family, acl string, e *Entry) error {
	errs := checkEntry(c, f, acl, e)
	if len(errs) == 0 {
		return nil
	}
	return errs[0]
}

// checkEntry returns every problem of the entry.
func checkEntry(c *Config, f Family, acl string, e *Entry) []*Error {
	if f != IPv4 && f != IPv6 {
		return []*Error{errorf("unknown address family %d", int(f))}
	}
	var errs []*Error
	add := func(err error) {
		if err == nil {
			return // before errors.As, whose target would be allocated
		}
		var ae *Error
		if errors.As(err, &ae) && ae != nil {
			errs = append(errs, ae)
		}
	}
	if e.Seq < 1 || e.Seq > MaxSeq {
		add(errorf("seq %d out of range 1-%d", e.Seq, MaxSeq))
	}
	if e.Action == Remark {
		add(checkRemark(e))
		return errs
	}
	if e.Action < Permit || e.Action > HardDrop {
		add(errorf("unknown action %d", int(e.Action)))
		return errs
	}
	if e.Remark != "" {
		add(errorf("only a remark carries remark text"))
	}
	if e.Proto != ProtoAny && (e.Proto < 0 || e.Proto > 255) {
		add(errorf("protocol %d out of range 0-255", e.Proto))
	}
	add(checkAddr(f, "source", e.Src))
	add(checkAddr(f, "destination", e.Dst))
	add(checkPorts(e.Proto, "source", e.SrcPort))
	add(checkPorts(e.Proto, "destination", e.DstPort))
	add(checkConnlimits(f, e.Connlimits))
	if e.Rate != nil {
		add(checkRate(e.Rate))
	}
	if e.Quota != nil {
		add(checkQuota(e.Quota))
		if e.Action != Permit {
			add(errorf("quota needs a permit entry (it counts the bytes of admitted connections)"))
		}
	}
	if e.BlockFor != nil {
		add(checkBlockFor(e))
	}
	if e.TimeRange != "" && c != nil && c.TimeRange(e.TimeRange) == nil {
		add(errorf("time-range %q does not exist", e.TimeRange))
	}
	if e.TimeRange != "" && !ValidName(e.TimeRange) {
		add(errorf("invalid time-range name %q", e.TimeRange))
	}
	if e.LoadLimit != nil && (e.LoadLimit.Hundredths < MinLoadLimit || e.LoadLimit.Hundredths > MaxLoadLimit) {
		add(errorf("load-limit %s out of range 0.01-999.99", FormatLoadLimit(*e.LoadLimit)))
	}
	if e.Owner != nil {
		add(checkOwner(c, f, acl, e.Owner))
	}
	add(checkRefuse(e))
	if ifc, ok := c.appliedAs(f, acl, Out); ok && e.Refuse.Kind == RefuseMessage {
		add(errorf("refuse message only applies in, and access-list %q is applied to interface %s out", acl, ifc.Label()))
	}
	if e.Action == HardDrop {
		add(checkHardDrop(e))
	}
	return errs
}

func checkRemark(e *Entry) error {
	r := e.Remark
	switch {
	case r == "":
		return errorf("remark text is empty")
	case len(r) > MaxRemarkLen:
		return errorf("remark is longer than %d characters", MaxRemarkLen)
	case strings.TrimSpace(r) != r:
		return errorf("remark has leading or trailing spaces")
	case !printable(r):
		return errorf("remark has control characters")
	}
	z := Entry{Seq: e.Seq, Action: Remark, Remark: e.Remark}
	if contentKey(e) != contentKey(&z) {
		return errorf("a remark carries nothing but its text")
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func checkPorts(proto int, what string, p PortMatch) error {
	if p.Op == PortNone {
		if p != (PortMatch{}) {
			return errorf("%s port has values but no operator", what)
		}
		return nil
	}
	if !HasPorts(proto) {
		return errorf("port operator %q needs protocol tcp, udp or sctp", portOpNames[clampOp(p.Op)])
	}
	switch p.Op {
	case PortEq, PortNeq:
	case PortLt:
		if p.Lo == 0 {
			return errorf("%s port lt 0 matches nothing", what)
		}
	case PortGt:
		if p.Lo == math.MaxUint16 {
			return errorf("%s port gt 65535 matches nothing", what)
		}
	case PortRange:
		if p.Lo > p.Hi {
			return errorf("%s port range %d %d is reversed", what, p.Lo, p.Hi)
		}
		return nil
	default:
		return errorf("unknown %s port operator %d", what, int(p.Op))
	}
	if p.Hi != 0 {
		return errorf("%s port %s carries a second port", what, portOpNames[p.Op])
	}
	return nil
}

var portOpNames = [...]string{PortNone: "", PortEq: "eq", PortNeq: "neq", PortLt: "lt", PortGt: "gt", PortRange: "range"}

func clampOp(op PortOp) PortOp {
	if op < 0 || int(op) >= len(portOpNames) {
		return PortNone
	}
	return op
}

// String renders the port operator keyword: eq, neq, lt, gt or range.
func (op PortOp) String() string { return portOpNames[clampOp(op)] }

func checkConnlimit(f Family, l *Connlimit) error {
	if l.N < 0 || l.N > MaxConnlimit {
		return errorf("connlimit %d out of range 0-%d", l.N, MaxConnlimit)
	}
	switch l.Key {
	case PerPrefix:
		if l.PrefixLen < 1 || l.PrefixLen > f.Bits() {
			return errorf("per-prefix length %d out of range 1-%d", l.PrefixLen, f.Bits())
		}
		return nil
	case PerSource, PerDestination, Total:
	default:
		return errorf("unknown connlimit key %d", int(l.Key))
	}
	if l.PrefixLen != 0 {
		return errorf("connlimit prefix length without per-prefix")
	}
	return nil
}

// CheckRate returns an error unless r is a rate the kernel can enforce.
func CheckRate(r *Rate) error { return checkRate(r) }

// checkConnlimits checks each connlimit, and that an entry has at most
// MaxConnlimits of them, each with its own key: two limits on one key are
// refused rather than folded (the smaller would be the only one that
// counts, and their sets would share a name).
func checkConnlimits(f Family, cs []Connlimit) error {
	if len(cs) > MaxConnlimits {
		return errorf("at most %d connlimits on one entry", MaxConnlimits)
	}
	seen := map[[2]int]bool{}
	for i := range cs {
		if err := checkConnlimit(f, &cs[i]); err != nil {
			return err
		}
		k, l := cs[i].LimitKey(f)
		if seen[[2]int{int(k), l}] {
			return errorf("two connlimits on one key (%s): give each limit its own key", FormatLimitKey(k, l))
		}
		seen[[2]int{int(k), l}] = true
	}
	return nil
}

func checkRate(r *Rate) error {
	if r.N < 1 || r.N > MaxRate {
		return errorf("rate %d out of range 1-%d", r.N, MaxRate)
	}
	if r.Per < Second || r.Per > Day {
		return errorf("unknown rate period %d", int(r.Per))
	}
	if r.Burst < 0 || r.Burst > MaxBurst {
		return errorf("burst %d out of range 1-%d", r.Burst, MaxBurst)
	}
	if r.Key != PerSource && r.Key != Total {
		return errorf("rate counts per-source or total only")
	}
	return checkRateTokens(r)
}

// RateWindowCost is the kernel token cost of one connection in a
// fixed-window rate (no burst) of period p: twice the period, so that the
// tokens a window refills never pay for one more connection (see
// internal/nft rateCheck).
func RateWindowCost(p Period) time.Duration { return 2 * PeriodDuration(p) }

// PeriodDuration is the length of a rate or quota period.
func PeriodDuration(p Period) time.Duration {
	return [...]time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour}[p]
}

// checkRateTokens refuses rates whose token bucket the kernel cannot hold:
// it keeps cost*burst nanoseconds of tokens in 64 bits (nft_limit_init
// fails with EOVERFLOW), cost being period/N for a token bucket and
// RateWindowCost for a fixed window of N connections.
func checkRateTokens(r *Rate) error {
	cost, n := uint64(PeriodDuration(r.Per))/uint64(r.N), uint64(r.Burst)
	if r.Burst == 0 {
		cost, n = uint64(RateWindowCost(r.Per)), uint64(r.N)
	}
	if n > math.MaxUint64/cost {
		if r.Burst == 0 {
			return errorf("rate %d per %s without burst is more than the kernel can count (at most %d)", r.N, r.Per, math.MaxUint64/cost)
		}
		return errorf("burst %d is more than the kernel can hold at rate %d per %s (at most %d)", r.Burst, r.N, r.Per, math.MaxUint64/cost)
	}
	return nil
}

func checkQuota(q *Quota) error {
	if q.Unit < Bytes || q.Unit > GBytes {
		return errorf("unknown quota unit %d", int(q.Unit))
	}
	if q.N < 1 || q.N > MaxQuotaBytes/q.Unit.Size() {
		return errorf("quota %d %s out of range 1 byte to 1 EiB", q.N, q.Unit)
	}
	if q.Per != Minute && q.Per != Hour && q.Per != Day {
		return errorf("quota is per minute, hour or day, not per %s", q.Per)
	}
	return nil
}

func checkBlockFor(e *Entry) error {
	b := e.BlockFor
	if b.Seconds < 1 || b.Seconds > MaxBlockFor {
		return errorf("block-for %d out of range 1-%d seconds", b.Seconds, MaxBlockFor)
	}
	if !e.Limited() && e.Action != HardDrop {
		return errorf("block-for needs a connlimit, rate or quota on the entry")
	}
	return nil
}

func checkOwner(c *Config, f Family, acl string, o *Owner) error {
	if o.User != "" {
		if !ValidUserName(o.User) {
			return errorf("invalid user name %q", o.User)
		}
		if o.UID != 0 {
			return errorf("user %q carries a uid", o.User)
		}
	} else if o.UID < 0 || o.UID > MaxUID {
		return errorf("uid %d out of range 0-%d", o.UID, MaxUID)
	}
	if ifc, ok := c.appliedIn(f, acl); ok {
		return errorf("user/uid only applies out, and access-list %q is applied to interface %s in", acl, ifc.Label())
	}
	return nil
}

func checkRefuse(e *Entry) error {
	r := e.Refuse
	switch r.Kind {
	case RefuseDefault, RefuseDrop, RefuseReset:
		if r.Message != "" {
			return errorf("refuse %s carries a message", refuseNames[r.Kind])
		}
	case RefuseMessage:
		switch {
		case e.Proto != ProtoTCP:
			return errorf("refuse message needs protocol tcp")
		case r.Message == "":
			return errorf("refuse message is empty")
		case len(r.Message) > MaxMessageLen:
			return errorf("refuse message is longer than %d bytes", MaxMessageLen)
		case !printable(r.Message):
			return errorf("refuse message has control characters")
		}
	default:
		return errorf("unknown refuse kind %d", int(r.Kind))
	}
	return nil
}

var refuseNames = [...]string{RefuseDefault: "default", RefuseDrop: "drop", RefuseReset: "reset", RefuseMessage: "message"}

// checkHardDrop refuses options that mean nothing on an entry that always
// drops: limits (it refuses everything anyway) and refuse (it always drops).
func checkHardDrop(e *Entry) error {
	var opts []string
	if len(e.Connlimits) > 0 {
		opts = append(opts, "connlimit")
	}
	if e.Rate != nil {
		opts = append(opts, "rate")
	}
	if e.Quota != nil {
		opts = append(opts, "quota")
	}
	if e.BlockFor != nil {
		opts = append(opts, "block-for")
	}
	if e.LoadLimit != nil {
		opts = append(opts, "load-limit")
	}
	if e.Refuse.Kind != RefuseDefault {
		opts = append(opts, "refuse")
	}
	if len(opts) > 0 {
		return errorf("hard-drop always drops and takes no %s", strings.Join(opts, ", "))
	}
	return nil
}

// Validate checks a whole configuration (as loaded from a file or received by
// the agent) and returns every error found, joined, each an *Error with its
// Path; nil when valid.
func Validate(c *Config) error { return validate(c, nil) }

func validate(c, prev *Config) error {
	v := &validator{c: c, look: lookupView(c), prev: prev}
	v.global()
	v.timeRanges()
	v.acls()
	v.interfaces()
	return errors.Join(v.errs...)
}

type validator struct {
	c    *Config
	look *Config // c with sorted slices, for lookups that rely on order
	prev *Config // a valid config whose entries need no checking (ValidateChange), or nil
	errs []error
}

// lookupView returns a shallow copy of c whose slices are sorted and free of
// nils, so that lookups work on a config that Validate is about to reject.
func lookupView(c *Config) *Config {
	n := *c
	n.TimeRanges = slices.DeleteFunc(slices.Clone(c.TimeRanges), func(t *TimeRange) bool { return t == nil })
	slices.SortStableFunc(n.TimeRanges, func(a, b *TimeRange) int { return strings.Compare(a.Name, b.Name) })
	n.ACLs = slices.DeleteFunc(slices.Clone(c.ACLs), func(a *ACL) bool { return a == nil })
	slices.SortStableFunc(n.ACLs, func(a, b *ACL) int { return compareACL(a.Family, a.Name, b.Family, b.Name) })
	n.Interfaces = nil // not looked up
	return &n
}

func (v *validator) add(path string, err *Error) {
	if err != nil {
		v.errs = append(v.errs, &Error{Path: path, Msg: err.Msg})
	}
}

func (v *validator) addf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		return &Error{Msg: err.Error()}
	}
	return nil
}

func (v *validator) global() {
	if v.c.Hostname != "" && !ValidHostname(v.c.Hostname) {
		v.addf("hostname", "invalid hostname %q", v.c.Hostname)
	}
	if v.c.ExistingSessions != Keep && v.c.ExistingSessions != Reset {
		v.addf("connlimit existing-sessions", "unknown policy %d", int(v.c.ExistingSessions))
	}
}

func (v *validator) timeRanges() {
	for i, t := range v.c.TimeRanges {
		if t == nil {
			v.addf("", "time range %d is nil", i)
			continue
		}
		path := "time-range " + t.Name
		if !ValidName(t.Name) {
			v.addf(path, "invalid time-range name %q", t.Name)
		}
		if i > 0 && v.c.TimeRanges[i-1] != nil && v.c.TimeRanges[i-1].Name >= t.Name {
			v.addf(path, "time ranges not sorted or duplicated")
		}
		for j, p := range t.Periodic {
			v.add(path, asError(checkPeriodic(p)))
			if j > 0 && comparePeriodic(t.Periodic[j-1], p) >= 0 {
				v.addf(path, "periodic clauses not sorted or duplicated")
			}
		}
		if t.Absolute != nil {
			v.add(path, asError(checkAbsolute(t.Absolute)))
		}
	}
}

func (v *validator) acls() {
	for i, a := range v.c.ACLs {
		if a == nil {
			v.addf("", "access list %d is nil", i)
			continue
		}
		path := a.Label()
		if a.Family != IPv4 && a.Family != IPv6 {
			v.addf(path, "unknown address family %d", int(a.Family))
			continue
		}
		if !ValidName(a.Name) {
			v.addf(path, "invalid access-list name %q", a.Name)
		}
		if i > 0 {
			if p := v.c.ACLs[i-1]; p != nil && compareACL(p.Family, p.Name, a.Family, a.Name) >= 0 {
				v.addf(path, "access lists not sorted or duplicated")
			}
		}
		if !v.unchanged(a) {
			v.entries(a)
		}
	}
}

func (v *validator) entries(a *ACL) {
	label := a.Label()
	path := func(e *Entry) string { return label + " seq " + strconv.Itoa(e.Seq) } // only for errors
	dups := newEntryBuckets(len(a.Entries))
	for j, e := range a.Entries {
		if e == nil {
			v.addf(label, "entry %d is nil", j)
			continue
		}
		if j > 0 && a.Entries[j-1] != nil && a.Entries[j-1].Seq >= e.Seq {
			v.addf(path(e), "entries not sorted by seq or seq duplicated")
		}
		// user/uid against `in` bindings is reported once, by interfaces.
		for _, err := range checkEntry(v.look, a.Family, "", e) {
			v.add(path(e), err)
		}
		if e.Action == Remark {
			continue
		}
		if o := dups.sameOrAdd(e); o != nil {
			v.addf(path(e), "entry duplicates seq %d", o.Seq)
		}
	}
}

func (v *validator) interfaces() {
	for i, ifc := range v.c.Interfaces {
		if ifc == nil {
			v.addf("", "interface %d is nil", i)
			continue
		}
		path := "interface " + ifc.Label()
		v.add(path, asError(CheckInterfaceName(ifc.Kind, ifc.Name)))
		if i > 0 && v.c.Interfaces[i-1] != nil && compareInterfaces(v.c.Interfaces[i-1], ifc) >= 0 {
			v.addf(path, "interfaces not sorted or duplicated")
		}
		for _, f := range []Family{IPv4, IPv6} {
			for _, d := range []Direction{In, Out} {
				v.group(path, f, d, ifc.Groups[f][d])
			}
		}
	}
}

func (v *validator) group(path string, f Family, d Direction, name string) {
	if name == "" {
		return
	}
	a := v.look.ACL(f, name)
	if a == nil {
		v.addf(path, "%s access-group %s %s: access-list %q does not exist", f, name, d, name)
		return
	}
	if e, kind, other := wrongDirection(a, d); e != nil {
		v.addf(path, "%s access-group %s %s: %s entries (seq %d) only apply %s (access-group ... %s)", f, name, d, kind, e.Seq, other.Bound(), other)
	}
}

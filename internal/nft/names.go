package nft

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// DefaultTable is the name of the table Compile fills when Options.Table is
// empty. The family is always inet.
const DefaultTable = "slxsh"

// RefuseChain is the shared chain that refuses a connection of any protocol:
// a TCP reset for TCP, ICMP administratively prohibited for everything else.
const RefuseChain = "refuse"

// MaxNameLen is the longest chain, set or counter name Compile produces.
// Longer names keep a readable head and end in a hash of the whole name.
// (The kernel allows 255 bytes; 64 keeps `nft list` readable.)
const MaxNameLen = 64

// EntryRef identifies one ACL entry in one direction: the unit that owns a
// chain's rules, counters and limit sets. Seq 0 names the implicit deny.
type EntryRef struct {
	Family acl.Family
	ACL    string
	Dir    acl.Direction
	Seq    int
}

// famPrefix is the name prefix of a family: "ip" or "ip6".
func famPrefix(f acl.Family) string {
	if f == acl.IPv6 {
		return "ip6"
	}
	return "ip"
}

// shorten keeps names within MaxNameLen: a name that is too long becomes its
// head, '_' and 12 hex digits of the SHA-256 of the whole name, so distinct
// long names stay distinct.
func shorten(name string) string { return shortenTo(name, MaxNameLen) }

func shortenTo(name string, n int) string {
	if len(name) <= n {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return name[:n-13] + "_" + hex.EncodeToString(sum[:6])
}

// reserveSuffixLen is room for the longest reservation suffix ("_d65534").
const reserveSuffixLen = 7

// ChainName is the regular chain of an applied ACL in one direction:
// "ip_check_in", "ip6_web_out".
func ChainName(f acl.Family, aclName string, d acl.Direction) string {
	return shorten(EntryRef{Family: f, ACL: aclName, Dir: d}.listBase())
}

// entryBase is the common head of an entry's object names:
// "ip_check_in_10".
func (r EntryRef) base() string { return r.listBase() + "_" + strconv.Itoa(r.Seq) }

// listBase is the head of the names of a list's objects in one direction:
// "ip_check_in".
func (r EntryRef) listBase() string { return famPrefix(r.Family) + "_" + r.ACL + "_" + r.Dir.String() }

// RefusalReasons are the limits whose refusals an entry also counts on
// their own (ReasonCounterName), in the order show lists them.
var RefusalReasons = []string{RoleConnlimit, RoleRate, RoleQuota, RoleLoad}

// ReasonCounterName is the counter of an entry's refusals for one reason
// (a limit kind of RefusalReasons; "-full" refusals count under their
// limit): "ip_check_in_10_refused_connlimit". Only entries with that kind
// of limit have it.
func ReasonCounterName(r EntryRef, reason string) string {
	return shorten(r.base() + "_refused_" + reason)
}

// EntryReasons returns the refusal reasons an entry counts: the kinds of
// limits it has.
func EntryReasons(e *acl.Entry) []string {
	if e.Action == acl.Remark {
		return nil
	}
	var out []string
	for _, r := range RefusalReasons {
		var has bool
		switch r {
		case RoleConnlimit:
			has = len(e.Connlimits) > 0
		case RoleRate:
			has = e.Rate != nil
		case RoleQuota:
			has = e.Quota != nil
		case RoleLoad:
			has = e.LoadLimit != nil
		}
		if has {
			out = append(out, r)
		}
	}
	return out
}

// CounterNames returns the names of the named counter objects of an entry
// in a direction: connections that reached and matched the entry, and
// connections the entry refused. Both survive rule replacement.
func CounterNames(f acl.Family, aclName string, d acl.Direction, seq int) (matches, refused string) {
	b := EntryRef{f, aclName, d, seq}.base()
	return shorten(b + "_matches"), shorten(b + "_refused")
}

// ImplicitDenyCounter returns the name of the counter of connections refused
// by the implicit `deny ip any any` at the end of an ACL in a direction.
func ImplicitDenyCounter(f acl.Family, aclName string, d acl.Direction) string {
	return shorten(famPrefix(f) + "_" + aclName + "_" + d.String() + "_implicit_refused")
}

// keyToken is the part of a limit set's name that says what it counts by.
func keyToken(c *acl.Connlimit) string {
	switch c.Key {
	case acl.PerPrefix:
		return "p" + strconv.Itoa(c.PrefixLen)
	case acl.PerDestination:
		return "dst"
	case acl.Total:
		return "total"
	default:
		return "src"
	}
}

// ConnlimitSetName is the dynamic set of a connlimit entry:
// "ip_check_in_10_src_3" (family, acl, direction, seq, key kind, and the N of
// `ct count over N` that its elements carry). Everything an element keeps
// from its creation is in the name, so a changed limit or key gets a new,
// empty set; an unchanged entry keeps its set and kernel counts whatever
// else changes. The seq is part of the name: resequencing an ACL starts its
// limited entries with new sets (the agent recounts open sessions then, as
// it does for any new limit).
func ConnlimitSetName(f acl.Family, aclName string, d acl.Direction, seq int, c *acl.Connlimit, over int) string {
	b := EntryRef{f, aclName, d, seq}.base()
	return shortenTo(b+"_"+keyToken(c)+"_"+strconv.Itoa(over), MaxNameLen-reserveSuffixLen)
}

// Rule roles, the last word of a rule comment when an entry compiles to more
// than one rule. The first rule of an entry has no role word; a later limit
// check has its limit's name, and the rule that refuses what a full set could
// not count has the limit's name and "-full".
const (
	RoleConnlimit     = "connlimit"
	RoleConnlimitFull = "connlimit-full"
	RoleRate          = "rate"
	RoleRateFull      = "rate-full"
	RolePermit        = "permit"   // admits what passed every limit
	RoleGate          = "gate"     // refuses while the agent recounts old sessions
	RoleDepth         = "depth"    // sends keys with old sessions to the reservation chain
	RoleReserved      = "reserved" // refuses keys whose old sessions fill the limit
	// Layer j of the reservations has role "layerJ" (and "layerJ-full").
)

// Reservation objects of a connlimit set S (see connlimitChecks and
// reserve.go, the one place that reads and writes their elements).

// GateSetName is S_g: its one element, the family's nfproto, closes the
// entry while the agent counts the sessions that were open before S. Apply
// creates it closed, in the transaction that creates S.
func GateSetName(set string) string { return set + "_g" }

// ReservedSetName is S_r: every key that the agent holds at a depth (it
// had sessions open when S was created); the entry sends them to the
// chain ReserveChainName. Keys without old sessions pay this one lookup.
func ReservedSetName(set string) string { return set + "_r" }

// FullSetName is S_rf: reserved keys whose old sessions fill the limit.
func FullSetName(set string) string { return set + "_rf" }

// MemberSetName is S_rJ: reserved keys held at depth j or deeper.
func MemberSetName(set string, j int) string { return set + "_r" + strconv.Itoa(j) }

// ReserveChainName is the chain that counts a reserved key's connection in
// every layer up to its depth, and refuses it when one is full.
func ReserveChainName(set string) string { return set + "_res" }

// LayerSetName is S_lJ: the count of new sessions of the keys of depth j
// and deeper, with `ct count over T-j`.
func LayerSetName(set string, j int) string { return set + "_l" + strconv.Itoa(j) }

// ExactLayers is the depth up to which every depth has its layer: a key
// with up to ExactLayers old sessions is held at exactly its number of
// old sessions.
const ExactLayers = 64

// Layers returns the reservation layers of a limit `ct count over t`: every
// depth from 1 to min(t-1, ExactLayers), then depths spaced so that a key
// held at the next layer up from its E old sessions loses at most
// ceil(E/16) slots: after layer l comes l+1+ceil((l+1)/16).
func Layers(t int) []int {
	var out []int
	for j := 1; j < t; {
		out = append(out, j)
		if j < ExactLayers {
			j++
		} else {
			j += 1 + (j+1+15)/16
		}
	}
	return out
}

// Depth is where a key with old sessions is held under `ct count over t`:
// 0 for none, the smallest layer that is not below old, or t (the full
// chain) when no layer is deep enough. A key at depth d admits t-d new
// sessions: exactly t-old up to ExactLayers, never more.
func Depth(t, old int) int {
	if old <= 0 {
		return 0
	}
	if old < t && old <= ExactLayers {
		return old
	}
	for _, j := range Layers(t) {
		if j >= old {
			return j
		}
	}
	return t
}

// RolePermitND is the role of the implicit rule of IPv6 lists that lets
// neighbour discovery through before the implicit deny (as IOS and SLX do).
const RolePermitND = "permit-nd"

// RuleComment is the comment of an entry's rule: `acl=check dir=in seq=10`
// (`acl6=` for IPv6 lists), with " "+role appended when role is not "".
// Seq 0 names the implicit rules at the end of a list: `acl=check dir=in
// implicit-deny`, and with role RolePermitND `acl6=v6 dir=in
// implicit-permit-nd`.
func RuleComment(r EntryRef, role string) string {
	key := "acl"
	if r.Family == acl.IPv6 {
		key = "acl6"
	}
	s := key + "=" + r.ACL + " dir=" + r.Dir.String()
	switch {
	case r.Seq == 0 && role == "":
		return s + " implicit-deny"
	case r.Seq == 0:
		return s + " implicit-" + role
	}
	s += " seq=" + strconv.Itoa(r.Seq)
	if role != "" {
		s += " " + role
	}
	return s
}

// ParseComment reads back a comment made by RuleComment. ok is false for
// comments of other rules (base chains, the refuse chain).
func ParseComment(s string) (r EntryRef, role string, ok bool) {
	f := strings.Fields(s)
	if n := len(f); n > 3 && len(f[n-1]) > 1 && f[n-1][0] == 't' && strings.Trim(f[n-1][1:], "0123456789") == "" {
		f = f[:n-1] // a time-range copy of the entry's rules (timeCopyWord)
	}
	if len(f) < 3 {
		return r, "", false
	}
	switch {
	case strings.HasPrefix(f[0], "acl="):
		r.Family, r.ACL = acl.IPv4, f[0][4:]
	case strings.HasPrefix(f[0], "acl6="):
		r.Family, r.ACL = acl.IPv6, f[0][5:]
	default:
		return r, "", false
	}
	switch f[1] {
	case "dir=in":
		r.Dir = acl.In
	case "dir=out":
		r.Dir = acl.Out
	default:
		return r, "", false
	}
	switch {
	case f[2] == "implicit-deny" && len(f) == 3:
		return r, "", true
	case f[2] == "implicit-"+RolePermitND && len(f) == 3:
		return r, RolePermitND, true
	case f[2] == "implicit-"+RoleBlocked && (len(f) == 3 || len(f) == 4 && f[3] == RoleLog):
		return r, RoleBlocked, true // with "log": the log rule of its log chain
	case strings.HasPrefix(f[2], "seq="):
		n, err := strconv.Atoi(f[2][4:])
		if err != nil || n < 1 {
			return r, "", false
		}
		r.Seq = n
	default:
		return r, "", false
	}
	switch len(f) {
	case 3:
		return r, "", true
	case 4:
		return r, f[3], true
	}
	return r, "", false
}

// bindComment is the comment of a base-chain rule that sends an interface's
// traffic to an ACL chain: `iif=eth0 acl=check`, `oif=eth1 acl6=web`.
func bindComment(out bool, ifname string, f acl.Family, aclName string) string {
	side, key := "iif", "acl"
	if out {
		side = "oif"
	}
	if f == acl.IPv6 {
		key = "acl6"
	}
	return fmt.Sprintf("%s=%s %s=%s", side, ifname, key, aclName)
}

// windowBase is the head of the names of an entry's rate and quota sets:
// "ip_check_in_e" and 12 hex digits of the SHA-256 of what decides which
// connections reach them: of a permit entry, its match, user and time
// range; of another, the whole entry without its seq. Not the seq: a
// resequence that moves the entry keeps its sets, and the windows and
// buckets they hold (the kernel cannot give a limit's tokens back to a
// new set), and so does a change of the entry's other options. Two permit
// entries of a list with the same match and time range can share a set:
// the first decides every connection of both. Two other entries never do
// (a limited deny passes the connections under its limits on, and
// acl.AddEntry refuses an entry the same as another at another seq).
func windowBase(r EntryRef, e *acl.Entry) string {
	if e.Action == acl.Permit {
		e = &acl.Entry{Action: e.Action, Proto: e.Proto, Src: e.Src, Dst: e.Dst, SrcPort: e.SrcPort, DstPort: e.DstPort,
			Owner: e.Owner, TimeRange: e.TimeRange}
	}
	_, rest, _ := strings.Cut(strings.TrimPrefix(acl.FormatEntry(r.Family, e), "seq "), " ")
	sum := sha256.Sum256([]byte(rest))
	return r.listBase() + "_e" + hex.EncodeToString(sum[:6])
}

// RateSetName is the dynamic set of entry e's `rate`: a token bucket per
// key "ip_check_in_e0123456789ab_rate_src_10s_5" (rate, period and burst,
// which each element's bucket keeps from its creation), or a fixed window
// (no burst) per key, "..._rate_src_10m_win" (windowBase).
func RateSetName(ref EntryRef, e *acl.Entry) string {
	r := e.Rate
	key, burst := "src", strconv.Itoa(r.Burst)
	if r.Key == acl.Total {
		key = "total"
	}
	if r.Burst == 0 {
		burst = "win"
	}
	return shorten(fmt.Sprintf("%s_rate_%s_%d%c_%s", windowBase(ref, e), key, r.N, "smhd"[r.Per], burst))
}

package acl

import (
	"fmt"
	"net/netip"
	"time"
)

// The packet tracer's evaluation (`packet-tracer`, issue 14): what an ACL
// does with the first packet of a connection that has not happened yet,
// entry by entry, with the live state of the deciding entry's limits. It
// follows the compiled semantics (SPEC §4; internal/nft compiles the same
// order): entries in seq order, the first that matches decides, a limited
// deny below its limit passes the connection on, an entry outside its
// time-range is skipped, and the implicit deny ends the list. Matching is
// Entry.Mismatch, the one home of what a packet alone decides.

// Packet is the first packet of a connection: its protocol, addresses and
// ports (ICMP has no ports: 0).
type Packet struct {
	Proto        uint8
	Src, Dst     netip.Addr
	SPort, DPort uint16
}

// KeyState is a limit key's state as the kernel holds it: open sessions
// counted under the key (Old of them open before its limit set existed)
// and whether the kernel refuses the key's next connection.
type KeyState struct {
	Sessions, Old int
	AtLimit       bool
}

// TraceState is what the evaluation reads besides the configuration. Nil
// functions mean no state: no sessions, nobody blocked, load unknown.
type TraceState struct {
	Dir    Direction
	Routed bool // the connection passes through the host (no local socket)
	Now    time.Time
	Loc    *time.Location // the host's zone, for time ranges
	// Key returns the state of a key of one of entry seq's connlimits.
	Key func(seq int, cl Connlimit, key string) KeyState
	// Gated reports whether entry seq's limit set is still being counted
	// (its gate closed): every connection of the entry is refused.
	Gated func(seq int) bool
	// Blocked reports whether src is locked out on the ACL (block-for),
	// and by the lockout of which entry.
	Blocked func(src netip.Addr) (seq int, ok bool)
	// Load returns the 1-minute load average; ok false when unknown.
	Load func() (load float64, ok bool)
	// LoadFlag returns whether entry seq's load-limit flag is armed in
	// the kernel (the entry refuses); ok false when there is none (an ACL
	// not applied), and then Load decides as the agent would arm it.
	LoadFlag func(seq int) (on, ok bool)
	// Quota returns the bytes that entry seq's quota window of key (the
	// source address, or TotalKey) has used; ok false when the key has no
	// window (none used yet). Nil: not known.
	Quota func(seq int, key string) (used uint64, ok bool)
}

// StepResult is what one entry did with the packet.
type StepResult int

// Step results.
const (
	NoMatch  StepResult = iota // protocol, address or port differ (Why)
	Skipped                    // matches, but does not apply now (Why: time-range, user)
	PassedOn                   // a limited deny below its limits: evaluation goes on
	Decides                    // the first entry that matches decides
)

// String returns the result as packet-tracer prints it.
func (r StepResult) String() string {
	return [...]string{"no match", "skipped", "match, below its limit: next entry", "match"}[r]
}

// Step is one entry evaluated.
type Step struct {
	Seq    int
	Entry  string // as in the running-config
	Result StepResult
	Why    string
}

// LimitCheck is one limit of the deciding (or a passed-on) entry.
type LimitCheck struct {
	Seq      int
	Kind     string // "connlimit", "rate", "quota", "load-limit", "block-for", "blocked"
	Key      string // the key counted under (connlimit)
	By       string // "per-source", "per-prefix 24", "per-destination", "total"
	Sessions int
	Old      int
	Limit    int
	Over     bool   // this limit refuses the connection
	Note     string // state in words
}

// Trace is the evaluation of one packet by one ACL.
type Trace struct {
	Steps   []Step
	Seq     int // the deciding entry; 0: no entry (implicit deny, blocked)
	Limits  []LimitCheck
	Admit   bool
	Refusal string // how a refused connection is refused: reset, unreachable, drop, message "TEXT"
	Reason  string // permit, deny, hard-drop, connlimit, load-limit, blocked, implicit deny
}

// TracePacket evaluates packet p against access list a of configuration c
// (for its time ranges) with the live state st.
func TracePacket(c *Config, a *ACL, p Packet, st TraceState) Trace {
	var t Trace
	if st.Blocked != nil && hasBlockFor(a) {
		if seq, ok := st.Blocked(p.Src); ok {
			t.Seq = seq
			t.Limits = []LimitCheck{{Seq: seq, Kind: "blocked", Key: p.Src.Unmap().String(), Over: true,
				Note: fmt.Sprintf("source locked out on this access list by the block-for of seq %d", seq)}}
			t.Refusal, t.Reason = blockedRefusal(a.Entry(seq), p), "blocked"
			return t
		}
	}
	for _, e := range a.Entries {
		if e.Action == Remark {
			continue
		}
		step := Step{Seq: e.Seq, Entry: FormatEntry(a.Family, e)}
		if why := e.Mismatch(p.Proto, p.Src, p.Dst, p.SPort, p.DPort); why != "" {
			step.Result, step.Why = NoMatch, why
			t.Steps = append(t.Steps, step)
			continue
		}
		if why := inactive(c, e, st); why != "" {
			step.Result, step.Why = Skipped, why
			t.Steps = append(t.Steps, step)
			continue
		}
		if e.Owner != nil {
			step.Why = "assuming a local socket of " + ownerName(e.Owner) + " opens it"
		}
		checks, refused := limitChecks(e, p, st)
		t.Limits = append(t.Limits, checks...)
		limitedDeny := e.Action != Permit && len(checks) > 0
		if limitedDeny && refused == "" {
			step.Result = PassedOn
			t.Steps = append(t.Steps, step)
			continue
		}
		step.Result = Decides
		t.Steps = append(t.Steps, step)
		t.Seq = e.Seq
		switch {
		case refused != "":
			t.Refusal, t.Reason = entryRefusal(e, p), refused
		case e.Action == Permit:
			t.Admit, t.Reason = true, "permit"
		case e.Action == HardDrop:
			t.Refusal, t.Reason = "drop", "hard-drop"
		default:
			t.Refusal, t.Reason = entryRefusal(e, p), "deny"
		}
		return t
	}
	t.Refusal, t.Reason = anyRefusal(p), "implicit deny"
	return t
}

func hasBlockFor(a *ACL) bool {
	for _, e := range a.Entries {
		if e.BlockFor != nil {
			return true
		}
	}
	return false
}

// inactive tells why a matching entry does not apply now: a time range
// that is not active (or does not exist: the compiler refuses that), or a
// local user on an inbound or routed connection (no local socket owns it).
func inactive(c *Config, e *Entry, st TraceState) string {
	if e.TimeRange != "" {
		tr := c.TimeRange(e.TimeRange)
		loc := st.Loc
		if loc == nil {
			loc = time.Local
		}
		switch {
		case tr == nil:
			return fmt.Sprintf("time-range %s does not exist", e.TimeRange)
		case !tr.Active(st.Now, loc):
			return fmt.Sprintf("time-range %s is not active", e.TimeRange)
		}
	}
	switch {
	case e.Owner != nil && st.Dir == In:
		return "user/uid matches locally originated (outbound) connections only"
	case e.Owner != nil && st.Routed:
		return "user/uid matches locally originated connections only, and a routed one has no local socket"
	}
	return ""
}

// limitChecks evaluates the entry's limits in the compiled order
// (load-limit, connlimit, quota, rate: nft's checks) and returns them with
// the kind of the first that refuses ("" : none).
func limitChecks(e *Entry, p Packet, st TraceState) ([]LimitCheck, string) {
	var out []LimitCheck
	refused := ""
	add := func(c LimitCheck) {
		c.Seq = e.Seq
		if c.Over && refused == "" {
			refused = c.Kind
		}
		out = append(out, c)
	}
	if l := e.LoadLimit; l != nil {
		c := LimitCheck{Kind: "load-limit", Note: fmt.Sprintf("limit %.2f, load unknown: assumed under", float64(l.Hundredths)/100)}
		if st.Load != nil {
			if load, ok := st.Load(); ok {
				c.Over = load*100 > float64(l.Hundredths)
				c.Note = fmt.Sprintf("1-minute load %.2f, limit %.2f", load, float64(l.Hundredths)/100)
			}
		}
		if st.LoadFlag != nil {
			if on, ok := st.LoadFlag(e.Seq); ok {
				c.Over = on
				c.Note += map[bool]string{true: "; kernel flag armed: refusing", false: "; kernel flag not armed"}[on]
			}
		}
		add(c)
	}
	// In the compiled order (load-limit, connlimit, quota, rate); the
	// first over refuses and the later ones are not reached.
	for i := range e.Connlimits {
		if refused == "" {
			add(connlimitCheck(e, &e.Connlimits[i], p, st))
		}
	}
	if q := e.Quota; q != nil && refused == "" {
		add(quotaCheck(e, q, p, st))
	}
	if r := e.Rate; r != nil && refused == "" {
		add(LimitCheck{Kind: "rate", Limit: r.N,
			Note: fmt.Sprintf("%d per %s: the kernel's tokens are not readable, assumed under", r.N, r.Per)})
	}
	if e.BlockFor != nil && refused != "" && refused != "load-limit" {
		add(LimitCheck{Kind: "block-for", Note: fmt.Sprintf("the source would be locked out for %d s", e.BlockFor.Seconds)})
	}
	return out, refused
}

// quotaCheck is `quota N UNIT per PERIOD`: over once the key's window
// has used the quota (new connections are refused until it ends).
func quotaCheck(e *Entry, q *Quota, p Packet, st TraceState) LimitCheck {
	key, by := TotalKey, "total"
	if q.PerSource {
		key, by = p.Src.Unmap().String(), "per-source"
	}
	c := LimitCheck{Kind: "quota", Key: key, By: by}
	limit := q.Bytes()
	if st.Quota == nil {
		c.Note = fmt.Sprintf("%d bytes per %s: usage not known, assumed under", limit, q.Per)
		return c
	}
	used, ok := st.Quota(e.Seq, key)
	if !ok {
		c.Note = fmt.Sprintf("no window open: 0 of %d bytes used", limit)
		return c
	}
	c.Over = used >= limit
	c.Note = fmt.Sprintf("used %d of %d bytes this %s", used, limit, q.Per)
	if c.Over {
		c.Note += ": over quota, new connections are refused until the window ends"
	}
	return c
}

func connlimitCheck(e *Entry, cl *Connlimit, p Packet, st TraceState) LimitCheck {
	c := LimitCheck{Kind: "connlimit", Key: cl.KeyOf(p.Src, p.Dst), By: keyName(cl), Limit: cl.N}
	allowed := cl.N
	if e.Action != Permit {
		allowed = cl.N - 1 // the Nth, this one included, is refused
	}
	if allowed <= 0 {
		c.Over, c.Note = true, "refuses every connection"
		return c
	}
	var ks KeyState
	if st.Key != nil {
		ks = st.Key(e.Seq, *cl, c.Key)
	}
	c.Sessions, c.Old, c.Over = ks.Sessions, ks.Old, ks.AtLimit
	gated := st.Gated != nil && st.Gated(e.Seq)
	switch {
	case gated:
		c.Over, c.Note = true, "being counted (gate closed): every connection is refused until the agent has counted"
	case c.Over:
		c.Note = "at limit: the next connection is refused"
	default:
		c.Note = "under limit"
	}
	if ks.Old > 0 {
		c.Note += fmt.Sprintf(" (%d open before the limit)", ks.Old)
	}
	return c
}

func keyName(cl *Connlimit) string {
	switch cl.Key {
	case PerPrefix:
		return fmt.Sprintf("per-prefix %d", cl.PrefixLen)
	case PerDestination:
		return "per-destination"
	case Total:
		return "total"
	}
	return "per-source"
}

// entryRefusal is how the entry refuses p, as the compiler writes it:
// hard-drop and `refuse drop` drop, `refuse message` answers with its
// text, tcp entries reset, other protocols answer ICMP administratively
// prohibited, ip/ipv6 entries tell TCP from the rest.
func entryRefusal(e *Entry, p Packet) string {
	switch {
	case e.Drops():
		return "drop"
	case e.Refuse.Kind == RefuseMessage:
		return fmt.Sprintf("message %q", e.Refuse.Message)
	case e.Proto == ProtoTCP:
		return "reset"
	case e.Proto == ProtoAny:
		return anyRefusal(p)
	}
	return "unreachable"
}

// blockedRefusal is how a source locked out by e is refused, as the
// compiler writes it: as e refuses, except that its message is TCP's and
// anything else gets the refuse chain's answer.
func blockedRefusal(e *Entry, p Packet) string {
	switch {
	case e == nil:
	case e.Drops():
		return "drop"
	case e.Refuse.Kind == RefuseMessage && p.Proto == ProtoTCP:
		return fmt.Sprintf("message %q", e.Refuse.Message)
	}
	return anyRefusal(p)
}

// anyRefusal is the refuse chain's answer (implicit deny, blocked sources).
func anyRefusal(p Packet) string {
	if p.Proto == ProtoTCP {
		return "reset"
	}
	return "unreachable"
}

func ownerName(o *Owner) string {
	if o.User != "" {
		return "user " + o.User
	}
	return fmt.Sprintf("uid %d", o.UID)
}

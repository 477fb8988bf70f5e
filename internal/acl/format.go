package acl

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Format renders c as the canonical running-config: hostname, global
// settings, time ranges, IPv4 then IPv6 ACLs by name, interfaces; sub-mode
// lines indented by one space, blocks separated by "!" lines. Feeding it back
// through the shell yields an equal Config.
//
// Every block ends with a "!" line and every line with "\n"; the empty
// configuration formats as "". An interface without access-groups still
// prints as its `interface X` line and "!".
func Format(c *Config) string {
	var b strings.Builder
	format(&b, c, func(w io.StringWriter, a *ACL) { writeACL(w, a, FormatEntry) })
	return b.String()
}

// format writes Format(c) to b, the lists by acl (writeACL with
// FormatEntry's lines, or with a Formatter's).
func format(b io.StringWriter, c *Config, acl func(io.StringWriter, *ACL)) {
	if c.Hostname != "" {
		// SLX-OS's spelling, which its tools read back (Ansible's slxos
		// facts); `hostname NAME` is accepted as input too.
		b.WriteString("switch-attributes host-name " + c.Hostname + "\n!\n")
	}
	if c.ExistingSessions == Reset {
		b.WriteString("connlimit existing-sessions reset\n!\n")
	}
	for _, t := range c.TimeRanges {
		b.WriteString(FormatTimeRange(t))
	}
	for _, a := range c.ACLs {
		acl(b, a)
	}
	for _, i := range c.Interfaces {
		b.WriteString(FormatInterface(i))
	}
}

// FormatTimeRange renders one time-range block, ending in "!\n".
func FormatTimeRange(t *TimeRange) string {
	var b strings.Builder
	b.WriteString("time-range " + t.Name + "\n")
	for _, p := range t.Periodic {
		b.WriteString(" periodic " + formatPeriodic(p) + "\n")
	}
	if a := t.Absolute; a != nil {
		b.WriteString(" " + formatAbsolute(a) + "\n")
	}
	b.WriteString("!\n")
	return b.String()
}

func writeACL(b io.StringWriter, a *ACL, line func(Family, *Entry) string) {
	b.WriteString(a.Label())
	b.WriteString("\n")
	for _, e := range a.Entries {
		b.WriteString(" ")
		b.WriteString(line(a.Family, e))
		b.WriteString("\n")
	}
	b.WriteString("!\n")
}

// FormatInterface renders one interface block, ending in "!\n": its
// access-groups in the order ip in, ip out, ipv6 in, ipv6 out.
func FormatInterface(i *Interface) string {
	var b strings.Builder
	b.WriteString("interface " + i.Label() + "\n")
	for _, f := range []Family{IPv4, IPv6} {
		for _, d := range []Direction{In, Out} {
			if n := i.Groups[f][d]; n != "" {
				fmt.Fprintf(&b, " %s access-group %s %s\n", f, n, d)
			}
		}
	}
	b.WriteString("!\n")
	return b.String()
}

// FormatEntry renders one entry as it appears in the running-config, without
// indentation: "seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3".
// Options come in a fixed order (connlimit, rate, quota, block-for,
// time-range, load-limit, user/uid, refuse, log, count) and defaults are
// left out.
func FormatEntry(f Family, e *Entry) string {
	var words [32]string // on the stack: enough for most entries
	w := append(words[:0], "seq", strconv.Itoa(e.Seq))
	if e.Action == Remark {
		return strings.Join(append(w, "remark", e.Remark), " ")
	}
	w = append(w, actionNames[clampAction(e.Action)], ProtoName(f, e.Proto))
	w = append(w, e.Src.String())
	w = appendPorts(w, e.SrcPort)
	w = append(w, e.Dst.String())
	w = appendPorts(w, e.DstPort)
	w = appendOptions(w, e)
	return strings.Join(w, " ")
}

var actionNames = [...]string{Permit: "permit", Deny: "deny", HardDrop: "hard-drop", Remark: "remark"}

func clampAction(a Action) Action {
	if a < Permit || a > Remark {
		return Deny
	}
	return a
}

// String returns the action keyword: permit, deny, hard-drop or remark.
func (a Action) String() string { return actionNames[clampAction(a)] }

func appendPorts(w []string, p PortMatch) []string {
	switch p.Op {
	case PortNone:
		return w
	case PortRange:
		return append(w, "range", strconv.Itoa(int(p.Lo)), strconv.Itoa(int(p.Hi)))
	}
	return append(w, p.Op.String(), strconv.Itoa(int(p.Lo)))
}

func appendOptions(w []string, e *Entry) []string {
	for _, l := range e.Connlimits {
		w = append(w, "connlimit", strconv.Itoa(l.N))
		w = appendKey(w, l.Key, l.PrefixLen)
	}
	if r := e.Rate; r != nil {
		w = append(w, "rate", strconv.Itoa(r.N), "per", r.Per.String())
		if r.Burst != 0 {
			w = append(w, "burst", strconv.Itoa(r.Burst))
		}
		w = appendKey(w, r.Key, 0)
	}
	if q := e.Quota; q != nil {
		w = append(w, "quota", strconv.FormatUint(q.N, 10), q.Unit.String(), "per", q.Per.String())
		if q.PerSource {
			w = append(w, "per-source")
		}
	}
	if bf := e.BlockFor; bf != nil {
		w = append(w, "block-for", strconv.Itoa(bf.Seconds))
		if bf.Flush {
			w = append(w, "flush")
		}
	}
	if e.TimeRange != "" {
		w = append(w, "time-range", e.TimeRange)
	}
	if e.LoadLimit != nil {
		w = append(w, "load-limit", FormatLoadLimit(*e.LoadLimit))
	}
	if o := e.Owner; o != nil {
		if o.User != "" {
			w = append(w, "user", o.User)
		} else {
			w = append(w, "uid", strconv.Itoa(o.UID))
		}
	}
	switch e.Refuse.Kind {
	case RefuseDrop:
		w = append(w, "refuse", "drop")
	case RefuseReset:
		w = append(w, "refuse", "reset")
	case RefuseMessage:
		w = append(w, "refuse", "message", QuoteMessage(e.Refuse.Message))
	}
	if e.Log {
		w = append(w, "log")
	}
	if e.Count {
		w = append(w, "count")
	}
	return w
}

// appendKey adds the key of a limit; per-source is the default and is left out.
func appendKey(w []string, k KeyKind, prefixLen int) []string {
	switch k {
	case PerPrefix:
		return append(w, "per-prefix", strconv.Itoa(prefixLen))
	case PerDestination:
		return append(w, "per-destination")
	case Total:
		return append(w, "total")
	}
	return w
}

// FormatLimitKey is a limit key as the language writes it ("per-source",
// "per-prefix 24", ...).
func FormatLimitKey(k KeyKind, prefixLen int) string {
	if w := appendKey(nil, k, prefixLen); len(w) > 0 {
		return strings.Join(w, " ")
	}
	return "per-source"
}

// FormatLoadLimit renders a load limit with two decimals ("1.50").
func FormatLoadLimit(l LoadLimit) string {
	return fmt.Sprintf("%d.%02d", l.Hundredths/100, l.Hundredths%100)
}

// ParseLoadLimit parses `X`, `X.Y` or `X.YY` (0.01-999.99) into a LoadLimit.
func ParseLoadLimit(s string) (LoadLimit, error) {
	ip, fp, hasDot := strings.Cut(s, ".")
	if !digits(ip, 1, 3) || hasDot && !digits(fp, 1, 2) {
		return LoadLimit{}, errorf("load-limit %q is not a number with at most two decimals", s)
	}
	n, _ := strconv.Atoi(ip)
	frac := 0
	if hasDot {
		frac, _ = strconv.Atoi(fp)
		if len(fp) == 1 {
			frac *= 10
		}
	}
	l := LoadLimit{Hundredths: n*100 + frac}
	if l.Hundredths < MinLoadLimit || l.Hundredths > MaxLoadLimit {
		return LoadLimit{}, errorf("load-limit %s out of range 0.01-999.99", s)
	}
	return l, nil
}

// digits reports whether s is min to max ASCII digits.
func digits(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// QuoteMessage renders a refuse message as a double-quoted string: `"` and
// `\` inside are escaped with a backslash; nothing else is escaped (the
// message holds no control characters).
func QuoteMessage(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// UnquoteMessage inverts QuoteMessage: s must start and end with `"`, and
// inside, `\` may only precede `"` or `\`.
func UnquoteMessage(s string) (string, error) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", errorf("message must be in double quotes")
	}
	var b strings.Builder
	in := s[1 : len(s)-1]
	for i := 0; i < len(in); i++ {
		c := in[i]
		switch c {
		case '\\':
			if i+1 == len(in) || (in[i+1] != '"' && in[i+1] != '\\') {
				return "", errorf(`in a message, \ must be followed by " or \`)
			}
			i++
			c = in[i]
		case '"':
			return "", errorf(`a " inside a message must be written \"`)
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

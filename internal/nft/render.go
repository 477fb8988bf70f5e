package nft

import (
	"strconv"
	"strings"
	"time"
)

// String renders the ruleset exactly as `nft list table inet NAME` prints
// the table right after `nft -f` of this same text: named counters, then
// sets, then chains, each block followed by a blank line except the last,
// tabs for indentation. Counters print as zero (the kernel's values differ
// once traffic flowed) and sets without elements.
func (r *Ruleset) String() string {
	var blocks []string
	for _, c := range r.Counters {
		blocks = append(blocks, "\tcounter "+c+" {\n\t\tpackets 0 bytes 0\n\t}\n")
	}
	for _, s := range r.Sets {
		blocks = append(blocks, s.String())
	}
	for _, c := range r.Chains {
		blocks = append(blocks, c.String())
	}
	return "table inet " + r.Table + " {\n" + strings.Join(blocks, "\n") + "}\n"
}

// TypeName is the nft name of a set key type.
func (k SetKey) TypeName() string {
	switch k {
	case KeyIPv6:
		return "ipv6_addr"
	case KeyProto:
		return "inet_proto"
	case KeyNFProto:
		return "nf_proto"
	}
	return "ipv4_addr"
}

// String renders the set block, indented for its place in the table.
func (s *Set) String() string {
	if s.Map != nil {
		return s.mapString()
	}
	out := "\tset " + s.Name + " {\n" +
		"\t\ttype " + s.Key.TypeName() + "\n"
	if s.Size > 0 { // 0: unsized, grows on demand (nft lists UnsizedSetCap once a rule adds to it)
		out += "\t\tsize " + strconv.FormatUint(uint64(s.Size), 10) + "\n"
	}
	if s.Timeout > 0 {
		out += "\t\tflags dynamic,timeout\n\t\ttimeout " + durationString(s.Timeout) + "\n"
		if s.Kind == SetGrace {
			// Apply creates it with both, expiring (gateElements).
			out += "\t\telements = { ipv4, ipv6 }\n"
		}
		return out + "\t}\n"
	}
	out += "\t\tflags dynamic\n"
	if s.Kind == SetGate {
		// Apply creates a gate closed (gateElements); the agent opens it.
		out += "\t\telements = { " + nfprotoName(s.Entry.Family) + " }\n"
	}
	return out + "\t}\n"
}

// durationString formats a time as nft does: "1d", "1h", "1m30s", "500ms".
func durationString(d time.Duration) string {
	out := ""
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if n := d / u.d; n > 0 {
			out += strconv.FormatInt(int64(n), 10) + u.name
			d -= n * u.d
		}
	}
	if out == "" {
		return "0s"
	}
	return out
}

// String renders the chain block, indented for its place in the table.
func (c *Chain) String() string {
	var b strings.Builder
	b.WriteString("\tchain " + c.Name + " {\n")
	if c.Hook != nil {
		b.WriteString("\t\ttype " + c.Hook.Type.String() + " hook " + c.Hook.Hook + " priority " + priorityString(c.Hook) + "; policy accept;\n")
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t" + r.String() + "\n")
	}
	b.WriteString("\t}\n")
	return b.String()
}

// String is the chain type as nft names it.
func (t ChainType) String() string {
	if t == NATChain {
		return "nat"
	}
	return "filter"
}

// priorityString renders a chain priority as nft 1.0.6 does: as the
// standard priority of the hook (inet family) that lies within 10 of it,
// plus or minus the offset (`filter`, `mangle + 10`, `dstnat - 1`), else as
// the number.
func priorityString(h *Hook) string {
	std := []struct {
		name string
		prio int
	}{{"raw", -300}, {"mangle", PriorityMangle}, {"filter", 0}, {"security", 50}}
	switch h.Hook {
	case "prerouting", "output":
		std = append(std, struct {
			name string
			prio int
		}{"dstnat", PriorityDstNAT})
	case "input", "postrouting":
		std = append(std, struct {
			name string
			prio int
		}{"srcnat", PrioritySrcNAT})
	}
	for _, s := range std {
		switch off := h.Priority - s.prio; {
		case off == 0:
			return s.name
		case off > 0 && off <= 10:
			return s.name + " + " + strconv.Itoa(off)
		case off < 0 && off >= -10:
			return s.name + " - " + strconv.Itoa(-off)
		}
	}
	return strconv.Itoa(h.Priority)
}

// Standard chain priorities (nft's names).
const (
	PriorityMangle  = -150
	PriorityDstNAT  = -100
	PrioritySrcNAT  = 100
	PriorityDecide  = PriorityDstNAT - 2 // the `in` decision: after mangle, before any NAT
	PriorityMessage = PriorityDstNAT - 1 // the message redirect: before other tables' dstnat
)

// String renders the rule as one line: its statements and its comment.
func (r *Rule) String() string {
	if t := r.text.Load(); t != nil {
		return *t
	}
	t := r.render()
	r.text.Store(&t)
	return t
}

func (r *Rule) render() string {
	parts := make([]string, 0, len(r.Stmts)+1)
	for _, s := range r.Stmts {
		parts = append(parts, s.String())
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

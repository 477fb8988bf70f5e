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
	out := "\tset " + s.Name + " {\n" +
		"\t\ttype " + s.Key.TypeName() + "\n"
	if s.Size > 0 { // 0: unsized, grows on demand and is never full
		out += "\t\tsize " + strconv.FormatUint(uint64(s.Size), 10) + "\n"
	}
	if s.Timeout > 0 {
		return out + "\t\tflags dynamic,timeout\n\t\ttimeout " + durationString(s.Timeout) + "\n\t}\n"
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
		b.WriteString("\t\ttype filter hook " + c.Hook.Hook + " priority " + priorityString(c.Hook.Priority) + "; policy accept;\n")
	}
	for _, r := range c.Rules {
		b.WriteString("\t\t" + r.String() + "\n")
	}
	b.WriteString("\t}\n")
	return b.String()
}

// priorityString renders a filter chain priority as nft does, relative to
// the standard `filter` priority 0.
func priorityString(p int) string {
	switch {
	case p == 0:
		return "filter"
	case p > 0:
		return "filter + " + strconv.Itoa(p)
	}
	return "filter - " + strconv.Itoa(-p)
}

// String renders the rule as one line: its statements and its comment.
func (r *Rule) String() string {
	parts := make([]string, 0, len(r.Stmts)+1)
	for _, s := range r.Stmts {
		parts = append(parts, s.String())
	}
	if r.Comment != "" {
		parts = append(parts, "comment "+quote(r.Comment))
	}
	return strings.Join(parts, " ")
}

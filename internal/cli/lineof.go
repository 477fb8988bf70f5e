package cli

import (
	"strconv"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// LineOf returns the line of t (an index into t.Lines) that last changed
// the part of the configuration at path, an *acl.Error's: `ip access-list
// extended NAME seq N`, `interface LABEL` or `time-range NAME`. false: t
// leaves that part as c has it, or path names none of these.
//
// The agent names the line of an error that only the compiler finds (a
// user the host does not know, an interface not mapped), so that a
// scripted block's error points at its line rather than at its `end`. It
// replays t once more, on errors only.
func LineOf(c *acl.Config, t Txn, path string) (int, bool) {
	before, ok := partAt(c, path)
	if !ok {
		return 0, false
	}
	last, prev := -1, before
	_, err := applyLines(c, t, func(i int, cfg *acl.Config) {
		if now, _ := partAt(cfg, path); now != prev {
			last, prev = i, now
		}
	})
	if err != nil || last < 0 || prev == before {
		return 0, false
	}
	return last, true
}

// partAt renders the part of c at path ("" when c has none), and whether
// path names a part LineOf knows.
func partAt(c *acl.Config, path string) (string, bool) {
	if name, ok := strings.CutPrefix(path, "time-range "); ok {
		if r := c.TimeRange(name); r != nil {
			return acl.FormatTimeRange(r), true
		}
		return "", true
	}
	if label, ok := strings.CutPrefix(path, "interface "); ok {
		for _, i := range c.Interfaces {
			if i.Label() == label {
				return acl.FormatInterface(i), true
			}
		}
		return "", true
	}
	label, rest, ok := strings.Cut(path, " seq ")
	seq, err := strconv.Atoi(rest)
	if !ok || err != nil || !strings.Contains(label, " access-list extended ") {
		return "", false
	}
	for _, a := range c.ACLs {
		if a.Label() == label {
			if e := a.Entry(seq); e != nil {
				return acl.FormatEntry(a.Family, e), true
			}
			break
		}
	}
	return "", true
}

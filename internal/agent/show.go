package agent

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/slxsh/slxsh/internal/acl"
	"golang.org/x/sys/unix"
)

// Show renders one show command.
func (a *Agent) Show(req *ShowRequest) (string, error) {
	switch req.Kind {
	case ShowRunning:
		a.mu.Lock()
		defer a.mu.Unlock()
		return acl.Format(a.running), nil
	case ShowStartup:
		return a.StartupText()
	case ShowNftables:
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.ruleset == nil {
			return "", nil
		}
		return rulesetText(a.ruleset), nil
	case ShowVersion:
		return a.showVersion(), nil
	case ShowACL:
		return a.showACLs(req.Family, req.Name)
	case ShowACLIf:
		return a.showACLInterface(req.Family, req.Interface, req.Direction)
	case ShowAccessGroup:
		return a.showAccessGroups(req.Family)
	}
	return "", &TxnError{Msg: fmt.Sprintf("%% Error: unknown show request %q", req.Kind)}
}

func (a *Agent) showVersion() string {
	var u unix.Utsname
	kernel := "unknown"
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) +
			" " + unix.ByteSliceToString(u.Machine[:])
	}
	v := a.opts.Version
	if v == "" {
		v = "devel"
	}
	return fmt.Sprintf("slxsh version %s\naclagent pid %d\nKernel: %s\n", v, os.Getpid(), kernel)
}

// counterKey identifies one entry in one direction.
type counterKey struct {
	f   acl.Family
	acl string
	seq int
	d   acl.Direction
}

func (a *Agent) showACLs(family, name string) (string, error) {
	f, err := parseFamily(family)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var lists []*acl.ACL
	if name != "" {
		l := a.running.ACL(f, name)
		if l == nil {
			return "", &TxnError{Msg: fmt.Sprintf("%% Error: access-list %q does not exist", name)}
		}
		lists = []*acl.ACL{l}
	} else {
		for _, l := range a.running.ACLs {
			if l.Family == f {
				lists = append(lists, l)
			}
		}
	}
	counts, err := a.countIndexLocked()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range lists {
		a.writeACLLocked(&b, l, counts)
	}
	return b.String(), nil
}

func (a *Agent) countIndexLocked() (map[counterKey]EntryCount, error) {
	list, err := a.countsLocked(true)
	if err != nil {
		return nil, &TxnError{Msg: "% Error: cannot read counters: " + err.Error()}
	}
	idx := make(map[counterKey]EntryCount, len(list))
	for _, c := range list {
		idx[counterKey{c.Family, c.ACL, c.Seq, c.Direction}] = c
	}
	return idx, nil
}

// writeACLLocked writes one list as in the running-config, each entry
// followed by its counters: "(15 matches, 2 refused)". An ACL applied in
// both directions shows both: "(in: 15 matches; out: 3 matches)".
func (a *Agent) writeACLLocked(b *strings.Builder, l *acl.ACL, counts map[counterKey]EntryCount) {
	dirs := directions(a.running, l.Family, l.Name)
	fmt.Fprintf(b, "%s access-list extended %s", l.Family, l.Name)
	if where := a.appliedOnLocked(l); where != "" {
		fmt.Fprintf(b, " (applied on %s)", where)
	}
	b.WriteByte('\n')
	for _, e := range l.Entries {
		b.WriteString(" " + acl.FormatEntry(l.Family, e))
		if e.Action != acl.Remark {
			var parts []string
			for d := range 2 {
				if !dirs[d] {
					continue
				}
				c := counts[counterKey{l.Family, l.Name, e.Seq, acl.Direction(d)}]
				p := fmt.Sprintf("%d matches", c.Matches)
				if canRefuse(e) {
					p += fmt.Sprintf(", %d refused", c.Refused)
				}
				if dirs[0] && dirs[1] {
					p = acl.Direction(d).String() + ": " + p
				}
				parts = append(parts, p)
			}
			if len(parts) > 0 {
				b.WriteString(" (" + strings.Join(parts, "; ") + ")")
			}
		}
		b.WriteByte('\n')
	}
}

// canRefuse reports whether an entry has a refusal counter worth showing:
// it limits something, or it refuses what it matches.
func canRefuse(e *acl.Entry) bool {
	return e.Action != acl.Permit || e.Connlimit != nil || e.Rate != nil || e.Quota != nil ||
		e.BlockFor != nil || e.LoadLimit != nil
}

// appliedOnLocked lists where an ACL is applied: "management 0 in, eth2 out".
func (a *Agent) appliedOnLocked(l *acl.ACL) string {
	var where []string
	for _, ifc := range a.running.Interfaces {
		for d := range 2 {
			if ifc.Groups[l.Family][d] == l.Name {
				where = append(where, ifc.Label()+" "+acl.Direction(d).String())
			}
		}
	}
	return strings.Join(where, ", ")
}

// parseInterface reads an interface as typed: "management 0",
// "ethernet 0/1" or a Linux name.
func parseInterface(s string) (acl.IfKind, string, error) {
	f := strings.Fields(s)
	switch {
	case len(f) == 2 && f[0] == "management":
		return acl.IfManagement, f[1], nil
	case len(f) == 2 && f[0] == "ethernet":
		return acl.IfEthernet, f[1], nil
	case len(f) == 1:
		return acl.IfLinux, f[0], nil
	}
	return 0, "", &TxnError{Msg: fmt.Sprintf("%% Error: bad interface %q", s)}
}

func parseDirection(s string) (acl.Direction, error) {
	switch s {
	case "in":
		return acl.In, nil
	case "out":
		return acl.Out, nil
	}
	return 0, &TxnError{Msg: fmt.Sprintf("%% Error: bad direction %q", s)}
}

func (a *Agent) showACLInterface(family, ifname, dir string) (string, error) {
	f, err := parseFamily(family)
	if err != nil {
		return "", err
	}
	kind, name, err := parseInterface(ifname)
	if err != nil {
		return "", err
	}
	d, err := parseDirection(dir)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ifc := a.running.Interface(kind, name)
	if ifc == nil || ifc.Groups[f][d] == "" {
		return fmt.Sprintf("No %s access-group applied on %s %s\n", f, acl.InterfaceLabel(kind, name), d), nil
	}
	l := a.running.ACL(f, ifc.Groups[f][d])
	if l == nil { // cannot happen in a valid config
		return "", &TxnError{Msg: fmt.Sprintf("%% Error: access-list %q does not exist", ifc.Groups[f][d])}
	}
	counts, err := a.countIndexLocked()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Interface %s%s, %s:\n", ifc.Label(), a.devSuffixLocked(ifc), map[acl.Direction]string{acl.In: "inbound", acl.Out: "outbound"}[d])
	a.writeACLLocked(&b, l, counts)
	return b.String(), nil
}

// devSuffixLocked returns " (eth0)" for a mapped interface, "" for a Linux one.
func (a *Agent) devSuffixLocked(ifc *acl.Interface) string {
	if ifc.Kind == acl.IfLinux {
		return ""
	}
	dev := a.opts.Resolve(ifc.Kind, ifc.Name)
	if dev == "" {
		dev = "unmapped"
	}
	return " (" + dev + ")"
}

func (a *Agent) showAccessGroups(family string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Interface\tLinux\tFamily\tDirection\tACL")
	for _, ifc := range a.running.Interfaces {
		dev := a.opts.Resolve(ifc.Kind, ifc.Name)
		if dev == "" {
			dev = "-"
		}
		for f := range 2 {
			if family != "" && acl.Family(f).String() != family {
				continue
			}
			for d := range 2 {
				if g := ifc.Groups[f][d]; g != "" {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ifc.Label(), dev, acl.Family(f), acl.Direction(d), g)
				}
			}
		}
	}
	tw.Flush()
	return b.String(), nil
}

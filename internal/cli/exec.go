package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Exec mode: configure, show, clear, copy, write, terminal, resequence.

// execArgs are the arguments of exec commands.
type execArgs struct {
	fam     acl.Family
	name    string
	hasName bool
	seq     int
	source  netip.Addr
	n, m    int
	revert  bool
	ifKind  acl.IfKind
	dir     acl.Direction
	what    string // show running-config section
}

func execFamily() node {
	return alt(
		kwSet("ip", "IPv4 access lists", func(a *execArgs) { a.fam = acl.IPv4 }),
		kwSet("ipv6", "IPv6 access lists", func(a *execArgs) { a.fam = acl.IPv6 }))
}

func aclNameArg() *atom {
	return wordArg("Access list name", func(a *execArgs, s string) { a.name, a.hasName = s, true })
}

func execCommands() []*command {
	show := kw("show", "Show running system information")
	clear := kw("clear", "Reset functions")
	accessList := kw("access-list", "Access lists")
	pipe := pipeNode()
	seqArg := seq(kw("seq", "One entry"), intArg(1, 65535, "Sequence number", func(a *execArgs, n int) { a.seq = n }))
	source := seq(kw("source", "One source address"), anyAddrArg("Source address", func(a *execArgs, x netip.Addr) { a.source = x }))
	section := func(word, help string) node {
		return kwSet(word, help, func(a *execArgs) { a.what = word })
	}
	return []*command{
		execCmd(seq(kw("configure", "Enter configuration mode"), kw("terminal", "Configure from the terminal"),
			opt(kw("revert", "Revert the configuration unless confirmed"), kw("timer", "Revert timer"),
				intArg(1, 1440, "Minutes", func(a *execArgs, n int) { a.n, a.revert = n, true }))), cmdConfigure),
		execCmd(seq(kw("configure", "Enter configuration mode"), kw("confirm", "Confirm the configuration (stop the revert timer)")),
			func(s *Session, w io.Writer, a *execArgs) error { return s.b.Confirm() }),
		execCmd(seq(show, kw("running-config", "Current operating configuration"),
			opt(alt(
				seq(execFamily(), kwSet("access-list", "Access lists", func(a *execArgs) { a.what = "access-list" }), opt(aclNameArg())),
				section("interface", "Interfaces"),
				section("time-range", "Time ranges"))), pipe), cmdShowRunning),
		execCmd(seq(show, kw("startup-config", "Startup configuration"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error {
				t, err := s.b.Startup()
				if err == nil {
					_, err = io.WriteString(w, t)
				}
				return err
			}),
		execCmd(seq(show, accessList, execFamily(), aclNameArg(), pipe), cmdShowACL),
		execCmd(seq(show, execFamily(), kw("access-lists", "Access lists"), opt(aclNameArg()), pipe), cmdShowACLs),
		execCmd(seq(show, accessList, kw("sessions", "Current sessions per key of the limited entries"),
			execFamily(), aclNameArg(), opt(seqArg), pipe), cmdShowSessions),
		execCmd(seq(show, accessList, kw("interface", "Access lists applied to an interface"),
			ifNode(func(a *execArgs, k acl.IfKind, n string) { a.ifKind, a.name = k, n }), direction(), pipe), cmdShowInterface),
		execCmd(seq(show, execFamily(), kw("access-group", "Access lists applied to interfaces"), pipe), cmdShowGroups),
		execCmd(seq(show, kw("nftables", "The compiled nftables ruleset"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error { return writeResult(w)(s.b.Nftables()) }),
		execCmd(seq(show, kw("logging", "Recent events of log entries"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error { return writeResult(w)(s.b.Logging()) }),
		execCmd(seq(show, kw("version", "Software version"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error {
				fmt.Fprintf(w, "slxsh version %s\n", Version)
				return writeResult(w)(s.b.Version())
			}),
		execCmd(seq(show, kw("history", "Lines entered in this session"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error {
				for _, l := range s.history {
					fmt.Fprintf(w, "  %s\n", l)
				}
				return nil
			}),
		execCmd(seq(show, kw("clock", "Date and time"), pipe),
			func(s *Session, w io.Writer, a *execArgs) error {
				_, err := fmt.Fprintln(w, time.Now().Format("15:04:05.000 MST Mon Jan 2 2006"))
				return err
			}),
		execCmd(seq(clear, accessList, kw("counters", "Zero the counters"), opt(execFamily(), aclNameArg())),
			func(s *Session, w io.Writer, a *execArgs) error { return s.b.ClearCounters(a.fam, a.name) }),
		execCmd(seq(clear, accessList, kw("sessions", "Reset sessions"), execFamily(), aclNameArg(), opt(seqArg), opt(source)),
			func(s *Session, w io.Writer, a *execArgs) error {
				return s.b.ClearSessions(a.fam, a.name, a.seq, a.source)
			}),
		execCmd(seq(clear, accessList, kw("blocked", "Lift block-for lockouts"), execFamily(), aclNameArg(), opt(source)),
			func(s *Session, w io.Writer, a *execArgs) error { return s.b.ClearBlocked(a.fam, a.name, a.source) }),
		execCmd(seq(kw("copy", "Copy a configuration"), kw("running-config", "The running configuration"),
			kw("startup-config", "The startup configuration")), cmdCopy),
		execCmd(seq(kw("write", "Write the configuration"), kw("memory", "To the startup configuration")), cmdSave),
		execCmd(seq(kw("terminal", "Set terminal line parameters"), alt(
			seq(kwSet("length", "Lines per screen (0: no paging)", func(a *execArgs) { a.what = "length" }),
				intArg(0, 512, "Lines", func(a *execArgs, n int) { a.n = n })),
			seq(kwSet("width", "Characters per line", func(a *execArgs) { a.what = "width" }),
				intArg(0, 512, "Characters", func(a *execArgs, n int) { a.n = n })))),
			func(s *Session, w io.Writer, a *execArgs) error {
				if a.what == "length" {
					s.length = a.n
				} else {
					s.width = a.n
				}
				return nil
			}),
		execCmd(seq(kw("resequence", "Renumber the entries of an access list"), accessList, execFamily(), aclNameArg(),
			intArg(1, 65535, "First sequence number", func(a *execArgs, n int) { a.n = n }),
			intArg(1, 65535, "Step", func(a *execArgs, n int) { a.m = n })), cmdResequence),
		navCmd(kw("exit", "Exit the session"), navExit),
		navCmd(kw("end", "Stay in exec mode"), navEnd),
	}
}

func direction() node {
	return alt(
		kwSet("in", "Inbound", func(a *execArgs) { a.dir = acl.In }),
		kwSet("out", "Outbound", func(a *execArgs) { a.dir = acl.Out }))
}

// writeResult writes the text of a backend answer.
func writeResult(w io.Writer) func(string, error) error {
	return func(t string, err error) error {
		if err != nil {
			return err
		}
		_, err = io.WriteString(w, t)
		return err
	}
}

func cmdConfigure(s *Session, w io.Writer, a *execArgs) error {
	if s.inConfig() {
		return errors.New("already in configuration mode")
	}
	if err := s.mayConfigure(); err != nil {
		return err
	}
	if a.revert {
		if err := s.b.Revert(a.n); err != nil {
			return err
		}
	}
	s.stack = append(s.stack[:1], frame{kind: modeConfig})
	_, err := fmt.Fprintln(w, "Entering configuration mode terminal")
	return err
}

func cmdSave(s *Session, w io.Writer, a *execArgs) error { return s.b.Save() }

// SaveQuestion is what `copy running-config startup-config` asks on a
// terminal before it overwrites the startup-config (SLX-OS asks it too, and
// Netmiko's extreme_slx save_config answers it with "y").
const SaveQuestion = "This operation will modify your stored system configuration and cannot be undone.\n" +
	"Would you like to continue? [y/n]:"

// cmdCopy is `copy running-config startup-config`: on a terminal it asks
// first, as SLX-OS does; `write memory` and scripts do not ask.
func cmdCopy(s *Session, w io.Writer, a *execArgs) error {
	if s.confirm != nil {
		if err := s.mayConfigure(); err != nil {
			return err // not asked a question whose yes would be refused
		}
		if !s.confirm(SaveQuestion) {
			return nil
		}
	}
	return s.b.Save()
}

// mayConfigure asks the backend whether the user may change the
// configuration, when it can tell (Permission).
func (s *Session) mayConfigure() error {
	if p, ok := s.b.(Permission); ok {
		return p.MayConfigure()
	}
	return nil
}

// runningACL returns the access list that a names in the running config,
// or an error when it does not exist.
func (s *Session) runningACL(a *execArgs) (*acl.ACL, error) {
	c, err := s.b.Running()
	if err != nil {
		return nil, err
	}
	l := c.ACL(a.fam, a.name)
	if l == nil {
		return nil, fmt.Errorf("access-list %q does not exist", a.name)
	}
	return l, nil
}

func cmdResequence(s *Session, w io.Writer, a *execArgs) error {
	if _, err := s.runningACL(a); err != nil {
		return err
	}
	f := frame{kind: modeACL, fam: a.fam, name: a.name}
	return s.b.Configure(Txn{Context: []string{f.contextLine()}, Lines: []string{fmt.Sprintf("resequence %d %d", a.n, a.m)}})
}

func cmdShowRunning(s *Session, w io.Writer, a *execArgs) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	switch a.what {
	case "access-list":
		sub := &acl.Config{}
		for _, l := range c.ACLs {
			if l.Family == a.fam && (!a.hasName || l.Name == a.name) {
				sub.ACLs = append(sub.ACLs, l)
			}
		}
		c = sub
	case "interface":
		c = &acl.Config{Interfaces: c.Interfaces}
	case "time-range":
		c = &acl.Config{TimeRanges: c.TimeRanges}
	}
	_, err = io.WriteString(w, acl.Format(c))
	return err
}

// showACL writes one ACL with its counters, when the backend has them.
func (s *Session) showACL(w io.Writer, l *acl.ACL) error {
	counters, err := s.b.Counters(l.Family, l.Name)
	if err != nil && !errors.Is(err, ErrNoAgent) {
		return err
	}
	bySeq := map[int]EntryCounters{}
	for _, c := range counters {
		bySeq[c.Seq] = c
	}
	fmt.Fprintf(w, "%s access-list extended %s\n", l.Family, l.Name)
	for _, e := range l.Entries {
		line := " " + acl.FormatEntry(l.Family, e)
		if c, ok := bySeq[e.Seq]; ok && e.Action != acl.Remark {
			line += fmt.Sprintf(" (%d matches, %d refused", c.Matches, c.Refused)
			if e.Limited() {
				line += fmt.Sprintf(", %d at limit", c.AtLimit)
			}
			line += ")"
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

func cmdShowACL(s *Session, w io.Writer, a *execArgs) error {
	l, err := s.runningACL(a)
	if err != nil {
		return err
	}
	return s.showACL(w, l)
}

func cmdShowACLs(s *Session, w io.Writer, a *execArgs) error {
	if a.hasName {
		return cmdShowACL(s, w, a)
	}
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	for _, l := range c.ACLs {
		if l.Family == a.fam {
			if err := s.showACL(w, l); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmdShowSessions(s *Session, w io.Writer, a *execArgs) error {
	l, err := s.runningACL(a)
	if err != nil {
		return err
	}
	keys, err := s.b.Sessions(a.fam, a.name, a.seq)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s access-list extended %s\n", l.Family, l.Name)
	for _, e := range l.Entries {
		if !e.Limited() || a.seq != 0 && e.Seq != a.seq {
			continue
		}
		fmt.Fprintf(w, " %s\n", acl.FormatEntry(l.Family, e))
		for _, k := range keys {
			if k.Seq != e.Seq {
				continue
			}
			mark := ""
			if k.AtLimit {
				mark = "  at limit"
			}
			if k.Old > 0 {
				mark += fmt.Sprintf(" (%d open before the limit)", k.Old)
			}
			fmt.Fprintf(w, "   %-40s %d/%d%s\n", k.Key, k.Sessions, k.Limit, mark)
		}
	}
	return nil
}

func cmdShowInterface(s *Session, w io.Writer, a *execArgs) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	label := acl.InterfaceLabel(a.ifKind, a.name)
	i := c.Interface(a.ifKind, a.name)
	shown := false
	for f := acl.IPv4; i != nil && f <= acl.IPv6; f++ {
		name := i.Groups[f][a.dir]
		if name == "" {
			continue
		}
		if l := c.ACL(f, name); l != nil {
			if err := s.showACL(w, l); err != nil {
				return err
			}
			shown = true
		}
	}
	if !shown {
		return fmt.Errorf("no access-list is applied to %s %s", label, a.dir)
	}
	return nil
}

func cmdShowGroups(s *Session, w io.Writer, a *execArgs) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, i := range c.Interfaces {
		for d := acl.In; d <= acl.Out; d++ {
			if name := i.Groups[a.fam][d]; name != "" {
				fmt.Fprintf(&b, "Interface %s: %s access-group %s %s\n", i.Label(), a.fam, name, d)
			}
		}
	}
	_, err = io.WriteString(w, b.String())
	return err
}

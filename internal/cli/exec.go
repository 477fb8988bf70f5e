package cli

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Exec mode: configure, show, clear, copy, write, terminal, resequence.

// Every exec command has its own argument type, filled by its syntax.

// configureArgs: configure terminal [revert timer MINUTES].
type configureArgs struct {
	minutes int
	revert  bool
}

// aclArgs name an access list (and optionally an entry and a source).
type aclArgs struct {
	ref     ACLRef
	hasName bool
}

// runningArgs: show running-config [SECTION].
type runningArgs struct {
	what string // "", "access-list", "interface", "time-range"
	acl  aclArgs
	// One interface or time range (show running-config interface
	// management 0, time-range NAME); name "" for all of them.
	ifKind acl.IfKind
	name   string
}

// showACLArgs: show access-list ip NAME [in|out].
type showACLArgs struct {
	acl    aclArgs
	dir    acl.Direction
	hasDir bool
}

// ifArgs: show access-list interface IF {in|out}.
type ifArgs struct {
	kind acl.IfKind
	name string
	dir  acl.Direction
}

// familyArgs: show ip access-group.
type familyArgs struct{ fam acl.Family }

// terminalArgs: terminal length|width N.
type terminalArgs struct {
	width bool
	n     int
}

// resequenceArgs: resequence access-list ip NAME START STEP.
type resequenceArgs struct {
	acl         aclArgs
	start, step int
}

func execFamily[T any](set func(*T, acl.Family)) node {
	return alt(
		kwSet("ip", "IPv4 access lists", func(a *T) { set(a, acl.IPv4) }),
		kwSet("ipv6", "IPv6 access lists", func(a *T) { set(a, acl.IPv6) }))
}

// aclNode is `{ip|ipv6} NAME` into the aclArgs that get returns.
func aclNode[T any](get func(*T) *aclArgs) node {
	return seq(execFamily(func(a *T, f acl.Family) { get(a).ref.Family = f }), aclNameArg(get))
}

func aclNameArg[T any](get func(*T) *aclArgs) *atom {
	return wordArg(aclNames, "Access list name", func(a *T, s string) { get(a).ref.Name, get(a).hasName = s, true })
}

func selfACL(a *aclArgs) *aclArgs { return a }

// textCmd is a show command that prints the text result of an operation.
func textCmd(syntax node, op Op[NoArgs, string]) *command {
	return execCmd(syntax, func(s *Session, w io.Writer, _ *NoArgs) error {
		return writeResult(w)(Call(s.b, op, NoArgs{}))
	})
}

// opCmd is a command with arguments T that performs an operation with
// argument A (arg makes it from T) and prints nothing.
func opCmd[T, A any](syntax node, op Op[A, NoArgs], arg func(*T) A) *command {
	return changing(execCmd(syntax, func(s *Session, w io.Writer, a *T) error {
		_, err := Call(s.b, op, arg(a))
		return err
	}))
}

// changing marks an exec command that changes something (command.changes).
func changing(c *command) *command {
	c.changes = true
	return c
}

func noOpArgs(*NoArgs) NoArgs { return NoArgs{} }

// nameArg is the argument of a command that takes an optional name.
type nameArg struct{ name string }

// cmdShowBlocked lists the sources an ACL's entries locked out.
func cmdShowBlocked(s *Session, w io.Writer, a *aclArgs) error {
	l, err := s.runningACL(a)
	if err != nil {
		return err
	}
	srcs, err := Call(s.b, OpBlocked, a.ref)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s access-list extended %s: %d blocked\n", l.Family, l.Name, len(srcs))
	for _, b := range srcs {
		who := b.Source.String()
		if b.All {
			who = "every source (the blocked set is full)"
		}
		fmt.Fprintf(w, " seq %d %s %-40s %s left\n", b.Seq, b.Dir, who, b.Left.Round(time.Second))
	}
	return nil
}

func execCommands() []*command {
	show := kw("show", "Show running system information")
	clear := kw("clear", "Reset functions")
	accessList := kw("access-list", "Access lists")
	pipe := pipeNode()
	seqArg := seq(kw("seq", "One entry"), intArg(1, 65535, "Sequence number", func(a *aclArgs, n int) { a.ref.Seq = n }))
	source := seq(kw("source", "One source address"), anyAddrArg("Source address", func(a *aclArgs, x netip.Addr) { a.ref.Source = x }))
	section := func(word, help string) node {
		return kwSet(word, help, func(a *runningArgs) { a.what = word })
	}
	runningACL := func(a *runningArgs) *aclArgs { return &a.acl }
	showACL := func(a *showACLArgs) *aclArgs { return &a.acl }
	cmds := []*command{
		configureCmd(execCmd(seq(kw("configure", "Enter configuration mode"), kw("terminal", "Configure from the terminal"),
			opt(kw("revert", "Revert the configuration unless confirmed"), kw("timer", "Revert timer"),
				intArg(1, MaxRevertMinutes, "Minutes", func(a *configureArgs, n int) { a.minutes, a.revert = n, true }))), cmdConfigure)),
		opCmd(seq(kw("configure", "Enter configuration mode"), kw("confirm", "Confirm the configuration (stop the revert timer)")),
			OpConfirm, noOpArgs),
		execCmd(seq(show, kw("running-config", "Current operating configuration"),
			opt(alt(
				seq(execFamily(func(a *runningArgs, f acl.Family) { a.acl.ref.Family = f }),
					kwSet("access-list", "Access lists", func(a *runningArgs) { a.what = "access-list" }),
					opt(kw("extended", "Extended access lists")), opt(aclNameArg(runningACL))),
				seq(section("interface", "Interfaces"),
					opt(ifNode(func(a *runningArgs, k acl.IfKind, n string) { a.ifKind, a.name = k, n }))),
				seq(section("time-range", "Time ranges"),
					opt(wordArg(timeRangeNames, "Time range name", func(a *runningArgs, n string) { a.name = n }))))), pipe), cmdShowRunning),
		execCmd(seq(show, kw("startup-config", "Startup configuration"), pipe), cmdShowStartup),
		execCmd(seq(show, accessList, aclNode(showACL), opt(direction(func(a *showACLArgs, d acl.Direction) { a.dir, a.hasDir = d, true })), pipe),
			cmdShowACLDir),
		execCmd(seq(show, execFamily(func(a *aclArgs, f acl.Family) { a.ref.Family = f }), kw("access-lists", "Access lists"),
			opt(aclNameArg(selfACL)), pipe), cmdShowACLs),
		execCmd(seq(show, kw("access-lists", "All access lists"), opt(aclNameArg(selfACL)), pipe), cmdShowAllACLs),
		// IOS reads `show access-list` as its abbreviation of access-lists,
		// and SLX-OS's `show access-list ip` without a name lists them all.
		execCmd(seq(show, accessList, opt(aclNameArg(selfACL)), pipe), cmdShowAllACLs), // and IOS's sh access-l NAME
		execCmd(seq(show, accessList, execFamily(func(a *aclArgs, f acl.Family) { a.ref.Family = f }), pipe), cmdShowACLs),
		execCmd(seq(show, accessList, kw("sessions", "Current sessions per key of the limited entries"),
			aclNode(selfACL), opt(seqArg), pipe), cmdShowSessions),
		execCmd(seq(show, accessList, kw("interface", "Access lists applied to an interface"),
			ifNode(func(a *ifArgs, k acl.IfKind, n string) { a.kind, a.name = k, n }),
			direction(func(a *ifArgs, d acl.Direction) { a.dir = d }), pipe), cmdShowInterface),
		execCmd(seq(show, execFamily(func(a *familyArgs, f acl.Family) { a.fam = f }), kw("access-group", "Access lists applied to interfaces"), pipe), cmdShowGroups),
		textCmd(seq(show, kw("nftables", "The compiled nftables ruleset"), pipe), OpNftables),
		execCmd(seq(show, kw("time-range", "Time ranges: active or not, next change"),
			opt(wordArg(timeRangeNames, "Time range name", func(a *nameArg, s string) { a.name = s })), pipe),
			func(s *Session, w io.Writer, a *nameArg) error {
				return writeResult(w)(Call(s.b, OpTimeRanges, a.name))
			}),
		execCmd(seq(show, accessList, kw("blocked", "Sources locked out by block-for"), aclNode(selfACL), pipe), cmdShowBlocked),
		textCmd(seq(show, kw("logging", "Recent events of log entries"), pipe), OpLogging),
		execCmd(seq(show, kw("version", "Software version"), pipe), cmdShowVersion),
		execCmd(seq(show, kw("history", "Lines entered in this session"), pipe),
			func(s *Session, w io.Writer, a *NoArgs) error {
				for _, l := range s.history {
					fmt.Fprintf(w, "  %s\n", l)
				}
				return nil
			}),
		execCmd(seq(show, kw("clock", "Date and time"), pipe),
			func(s *Session, w io.Writer, a *NoArgs) error {
				_, err := fmt.Fprintln(w, time.Now().Format("15:04:05.000 MST Mon Jan 2 2006"))
				return err
			}),
		packetTracerCmd(),
		opCmd(seq(clear, accessList, kw("counters", "Zero the counters"), opt(aclNode(selfACL))), OpClearCounters, aclRef),
		opCmd(seq(clear, accessList, kw("sessions", "Reset sessions"), aclNode(selfACL), opt(seqArg), opt(source)), OpClearSessions, aclRef),
		opCmd(seq(clear, accessList, kw("blocked", "Lift block-for lockouts"), aclNode(selfACL), opt(source)), OpClearBlocked, aclRef),
		execCmd(seq(kw("copy", "Copy a configuration"), kw("running-config", "The running configuration"),
			kw("startup-config", "The startup configuration")), cmdCopy),
		execCmd(seq(kw("write", "Write the configuration"), opt(kw("memory", "To the startup configuration"))), // IOS: write alone is write memory
			func(s *Session, w io.Writer, _ *NoArgs) error {
				if _, err := Call(s.b, OpSave, NoArgs{}); err != nil {
					return err
				}
				_, err := io.WriteString(w, "Building configuration...\n[OK]\n") // as IOS says it
				return err
			}),
		execCmd(seq(kw("terminal", "Set terminal line parameters"), alt(
			seq(kw("length", "Lines per screen (0: no paging)"),
				intArg(0, 512, "Lines", func(a *terminalArgs, n int) { a.n = n })),
			seq(kwSet("width", "Characters per line", func(a *terminalArgs) { a.width = true }),
				intArg(0, 512, "Characters", func(a *terminalArgs, n int) { a.n = n })))),
			func(s *Session, w io.Writer, a *terminalArgs) error {
				if a.width {
					s.width = a.n
				} else {
					s.length, s.lengthSet = a.n, true
				}
				return nil
			}),
		changing(execCmd(seq(kw("resequence", "Renumber the entries of an access list"), accessList,
			aclNode(func(a *resequenceArgs) *aclArgs { return &a.acl }),
			intArg(1, 65535, "First sequence number", func(a *resequenceArgs, n int) { a.start = n }),
			intArg(1, 65535, "Step", func(a *resequenceArgs, n int) { a.step = n })), cmdResequence)),
	}
	cmds = append(cmds, hostCommands(show, pipe)...)
	return append(cmds,
		navCmd(kw("exit", "Exit the session"), navExit),
		navCmd(kw("end", "Stay in exec mode"), navEnd))
}

// configureCmd marks configure terminal, which configuration modes replace
// with their own (to global configuration).
func configureCmd(c *command) *command {
	c.configure = true
	return c
}

// aclRef is the operation argument of an aclArgs command.
func aclRef(a *aclArgs) ACLRef { return a.ref }

func direction[T any](set func(*T, acl.Direction)) node {
	return alt(
		kwSet("in", "Inbound", func(a *T) { set(a, acl.In) }),
		kwSet("out", "Outbound", func(a *T) { set(a, acl.Out) }))
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

// cmdConfigure is configure terminal in exec mode (in configuration modes
// it is a mode change to global configuration, navConfig).
func cmdConfigure(s *Session, w io.Writer, a *configureArgs) error {
	if s.inConfig() { // `do configure terminal`
		s.stack = s.stack[:2]
		return nil
	}
	if err := s.mayConfigure(); err != nil {
		return err
	}
	if a.revert {
		if _, err := Call(s.b, OpRevert, a.minutes); err != nil {
			return err
		}
	}
	s.stack = append(s.stack[:1], frame{kind: modeConfig})
	_, err := fmt.Fprintln(w, "Entering configuration mode terminal")
	return err
}

// SaveQuestion is what `copy running-config startup-config` asks on a
// terminal before it overwrites the startup-config: SLX-OS's question,
// which Ansible's slxos_config (save_when) waits for and answers "y";
// Netmiko's extreme_slx save_config answers it too.
const SaveQuestion = "This operation will modify your startup configuration. Do you want to continue? [y/n]:"

// cmdCopy is `copy running-config startup-config`: on a terminal it asks
// first, as SLX-OS does, until the answer is yes or no; Enter alone is yes,
// as at IOS's `Destination filename [startup-config]?` (Ansible's cisco.ios
// ios_config sends the command and then an empty line). `write memory`
// and scripts do not ask.
func cmdCopy(s *Session, w io.Writer, _ *NoArgs) error {
	if s.confirm != nil {
		if err := s.mayConfigure(); err != nil {
			return err // not asked a question whose yes would be refused
		}
		for {
			answer, ok := s.confirm(SaveQuestion)
			if !ok {
				return nil // Ctrl-C or the end of input: no
			}
			switch strings.ToLower(strings.TrimSpace(answer)) {
			case "y", "yes", "":
				_, err := Call(s.b, OpSave, NoArgs{})
				return err
			case "n", "no":
				return nil
			}
		}
	}
	_, err := Call(s.b, OpSave, NoArgs{})
	return err
}

// mayConfigure asks the backend whether the user may change the
// configuration.
func (s *Session) mayConfigure() error {
	_, err := Call(s.b, OpMayConfigure, NoArgs{})
	return err
}

// runningACL returns the access list that a names in the running config,
// or an error when it does not exist.
func (s *Session) runningACL(a *aclArgs) (*acl.ACL, error) {
	c, err := s.b.Running()
	if err != nil {
		return nil, err
	}
	l := c.ACL(a.ref.Family, a.ref.Name)
	if l == nil {
		return nil, fmt.Errorf("access-list %q does not exist", a.ref.Name)
	}
	return l, nil
}

func cmdResequence(s *Session, w io.Writer, a *resequenceArgs) error {
	if _, err := s.runningACL(&a.acl); err != nil {
		return err
	}
	f := frame{kind: modeACL, fam: a.acl.ref.Family, name: a.acl.ref.Name}
	return s.b.Configure(Txn{Context: []string{f.contextLine()}, Lines: []string{fmt.Sprintf("resequence %d %d", a.start, a.step)}})
}

func cmdShowRunning(s *Session, w io.Writer, a *runningArgs) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	switch a.what {
	case "access-list":
		sub := &acl.Config{}
		for _, l := range c.ACLs {
			if l.Family == a.acl.ref.Family && (!a.acl.hasName || l.Name == a.acl.ref.Name) {
				sub.ACLs = append(sub.ACLs, l)
			}
		}
		if a.acl.hasName && len(sub.ACLs) == 0 {
			return fmt.Errorf("access-list %q does not exist", a.acl.ref.Name)
		}
		c = sub
	case "interface":
		sub := &acl.Config{Interfaces: c.Interfaces}
		if a.name != "" {
			itf := c.Interface(a.ifKind, a.name)
			if itf == nil {
				return fmt.Errorf("interface %s has no configuration", (&acl.Interface{Kind: a.ifKind, Name: a.name}).Label())
			}
			sub.Interfaces = []*acl.Interface{itf}
		}
		c = sub
	case "time-range":
		sub := &acl.Config{TimeRanges: c.TimeRanges}
		if a.name != "" {
			tr := c.TimeRange(a.name)
			if tr == nil {
				return fmt.Errorf("time-range %q does not exist", a.name)
			}
			sub.TimeRanges = []*acl.TimeRange{tr}
		}
		c = sub
	}
	_, err = io.WriteString(w, acl.Format(c))
	return err
}

// cmdShowStartup prints the startup-config as the running-config is
// printed: without the "end" line that aclagent's file ends with (it tells
// a complete file from a cut one, and is not configuration), so that the
// two compare equal when they are (Ansible's slxos_config save_when:
// modified compares them).
func cmdShowStartup(s *Session, w io.Writer, _ *NoArgs) error {
	text, err := Call(s.b, OpStartup, NoArgs{})
	if err != nil {
		return err
	}
	if strings.HasSuffix(text, "\nend\n") || text == "end\n" {
		text = text[:len(text)-len("end\n")]
	}
	_, err = io.WriteString(w, text)
	return err
}

// cmdShowVersion prints the shell's version, on the line Ansible's slxos
// plugin reads the version from, then the backend's lines.
func cmdShowVersion(s *Session, w io.Writer, _ *NoArgs) error {
	fmt.Fprintf(w, "slxsh version %s\n", Version)
	fmt.Fprintf(w, "SLX-OS Operating System Version: %s (slxsh, SLX-OS compatible command set)\n", Version)
	return writeResult(w)(Call(s.b, OpVersion, NoArgs{}))
}

// showACL writes one ACL with its counters, when the backend has them
// (of direction dir, "in" or "out", or of both when "").
func (s *Session) showACL(w io.Writer, l *acl.ACL, dir string) error {
	counters, err := Call(s.b, OpCounters, ACLRef{Family: l.Family, Name: l.Name, Dir: dir})
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
			line += ")" + reasonsText(c.Reasons)
		}
		fmt.Fprintln(w, line)
	}
	if c, ok := bySeq[0]; ok {
		fmt.Fprintf(w, " implicit deny (%d refused)\n", c.Refused)
		if n := c.Reasons["blocked"]; n > 0 {
			fmt.Fprintf(w, " blocked by block-for (%d refused)\n", n)
		}
	} else if err == nil && counters != nil && !slices.ContainsFunc(counters, func(c EntryCounters) bool { return c.Matches+c.Refused > 0 }) {
		// The backend counts, but no implicit deny and nothing counted:
		// the list is not applied (in that direction).
		fmt.Fprintf(w, " (not applied%s: nothing counted)\n", map[bool]string{true: " " + dir}[dir != ""])
	}
	return nil
}

// reasonsText is " refused by connlimit 2, rate 1" for refusals split by
// reason (only the reasons that refused), after the counters in brackets.
func reasonsText(r map[string]uint64) string {
	var parts []string
	for _, k := range []string{"connlimit", "rate", "quota", "load"} {
		if r[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, r[k]))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return " refused by " + strings.Join(parts, ", ")
}

func cmdShowACL(s *Session, w io.Writer, a *aclArgs) error {
	l, err := s.runningACL(a)
	if err != nil {
		return err
	}
	return s.showACL(w, l, "")
}

// cmdShowACLDir is `show access-list ip NAME [in|out]` (SLX): with a
// direction, the counters of that direction only.
func cmdShowACLDir(s *Session, w io.Writer, a *showACLArgs) error {
	l, err := s.runningACL(&a.acl)
	if err != nil {
		return err
	}
	dir := ""
	if a.hasDir {
		dir = a.dir.String()
	}
	return s.showACL(w, l, dir)
}

func cmdShowACLs(s *Session, w io.Writer, a *aclArgs) error {
	if a.hasName {
		return cmdShowACL(s, w, a)
	}
	return s.showACLsOf(w, func(l *acl.ACL) bool { return l.Family == a.ref.Family })
}

// cmdShowAllACLs is IOS's show access-lists [NAME]: every list of both
// families, or those called NAME.
func cmdShowAllACLs(s *Session, w io.Writer, a *aclArgs) error {
	if !a.hasName {
		return s.showACLsOf(w, func(*acl.ACL) bool { return true })
	}
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	if c.ACL(acl.IPv4, a.ref.Name) == nil && c.ACL(acl.IPv6, a.ref.Name) == nil {
		return fmt.Errorf("access-list %q does not exist", a.ref.Name)
	}
	return s.showACLsOf(w, func(l *acl.ACL) bool { return l.Name == a.ref.Name })
}

func (s *Session) showACLsOf(w io.Writer, want func(*acl.ACL) bool) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	for _, l := range c.ACLs {
		if want(l) {
			if err := s.showACL(w, l, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

func cmdShowSessions(s *Session, w io.Writer, a *aclArgs) error {
	l, err := s.runningACL(a)
	if err != nil {
		return err
	}
	keys, err := Call(s.b, OpSessions, a.ref)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s access-list extended %s\n", l.Family, l.Name)
	for _, e := range l.Entries {
		if !e.Limited() || a.ref.Seq != 0 && e.Seq != a.ref.Seq {
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
			key := k.Key
			if k.Resets > 0 {
				used := ""
				if k.Quota > 0 {
					used = fmt.Sprintf(", used %d of %d bytes", k.QuotaUsed, k.Quota)
					if k.QuotaUsed >= k.Quota {
						used += "  over quota"
					}
				}
				fmt.Fprintf(w, "   %-40s resets in %s%s\n", key+" ("+k.Per+")", k.Resets.Round(time.Second), used)
				continue
			}
			if len(e.Connlimits) > 1 { // which of the entry's limits
				key += " (" + k.Per + ")"
			}
			fmt.Fprintf(w, "   %-40s %d/%d%s\n", key, k.Sessions, k.Limit, mark)
		}
	}
	return nil
}

// cmdShowInterface shows the lists applied to an interface. A Linux name
// that the agent maps `management 0` or `ethernet S/P` to means that
// interface.
func cmdShowInterface(s *Session, w io.Writer, a *ifArgs) error {
	c, err := s.b.Running()
	if err != nil {
		return err
	}
	kind, name := a.kind, a.name
	if kind == acl.IfLinux && c.Interface(kind, name) == nil {
		kind, name = s.configuredAs(name)
	}
	i := c.Interface(kind, name)
	shown := false
	for f := acl.IPv4; i != nil && f <= acl.IPv6; f++ {
		name := i.Groups[f][a.dir]
		if name == "" {
			continue
		}
		if l := c.ACL(f, name); l != nil {
			if err := s.showACL(w, l, ""); err != nil {
				return err
			}
			shown = true
		}
	}
	if !shown {
		return fmt.Errorf("no access-list is applied to %s %s", acl.InterfaceLabel(a.kind, a.name), a.dir)
	}
	return nil
}

// configuredAs returns the configured interface that the Linux interface
// linux is (management 0, ethernet S/P), as the backend maps them; linux
// itself when nothing maps to it.
func (s *Session) configuredAs(linux string) (acl.IfKind, string) {
	names, _ := Call(s.b, OpInterfaces, NoArgs{})
	for _, n := range names {
		if n.Linux == linux && n.Kind != acl.IfLinux {
			return n.Kind, n.Name
		}
	}
	return acl.IfLinux, linux
}

func cmdShowGroups(s *Session, w io.Writer, a *familyArgs) error {
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

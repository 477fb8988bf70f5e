package cli

import (
	"github.com/slxsh/slxsh/internal/acl"
)

// Global configuration mode, interface mode and time-range mode.

// nameArgs are the arguments of commands that name one thing.
type nameArgs struct {
	fam    acl.Family
	ifKind acl.IfKind
	name   string
	keep   acl.SessionPolicy
}

func family(word string, f acl.Family) *atom {
	help := "IPv4 access lists"
	if f == acl.IPv6 {
		help = "IPv6 access lists"
	}
	return kwSet(word, help, func(a *nameArgs) { a.fam = f })
}

func families() node { return alt(family("ip", acl.IPv4), family("ipv6", acl.IPv6)) }

// ifNode is `management 0 | ethernet S/P | IFNAME`.
func ifNode[T any](set func(a *T, k acl.IfKind, name string)) node {
	return alt(
		seq(kw("management", "Management interface"),
			intArg(0, 0, "Management interface number", func(a *T, n int) { set(a, acl.IfManagement, "0") })),
		seq(kw("ethernet", "Ethernet interface"),
			slotPortArg("Slot/port", func(a *T, s string) { set(a, acl.IfEthernet, s) })),
		ifNameArg("Linux interface name", func(a *T, s string) { set(a, acl.IfLinux, s) }),
	)
}

func configCommands() []*command {
	aclName := wordArg(aclNames, "Access list name", func(a *nameArgs, s string) { a.name = s })
	trName := wordArg(timeRangeNames, "Time range name", func(a *nameArgs, s string) { a.name = s })
	iface := ifNode(func(a *nameArgs, k acl.IfKind, n string) { a.ifKind, a.name = k, n })
	accessList := seq(families(), kw("access-list", "Configure an access list"), kw("extended", "Extended access list"), aclName)
	no := kw("no", "Negate a command or set its defaults")
	setHostname := func(e *env, a *nameArgs) error { return e.cfg.SetHostname(a.name) }
	clearHostname := func(e *env, a *nameArgs) error { return e.cfg.SetHostname("") }
	hostname := cfgCmd(seq(kw("hostname", "Set the host name"),
		param("WORD", "Host name", acl.ValidHostname, func(a *nameArgs, s string) { a.name = s })), setHostname)
	hostname.after = func(s *Session, a any) { s.setHost(a.(*nameArgs).name) }
	noHostname := cfgCmd(seq(no, kw("hostname", "Set the host name"), opt(param[nameArgs]("WORD", "Host name", acl.ValidHostname, nil))),
		clearHostname)
	noHostname.after = func(s *Session, _ any) { s.setHost("") }
	// SLX-OS spells hostname `switch-attributes host-name NAME`.
	attrs := kw("switch-attributes", "Switch attributes")
	hostName := kw("host-name", "Set the host name")
	slxHostname := cfgCmd(seq(attrs, hostName,
		param("WORD", "Host name", acl.ValidHostname, func(a *nameArgs, s string) { a.name = s })), setHostname)
	slxHostname.after = hostname.after
	noSLXHostname := cfgCmd(seq(no, attrs, hostName, opt(param[nameArgs]("WORD", "Host name", acl.ValidHostname, nil))), clearHostname)
	noSLXHostname.after = noHostname.after
	policy := alt(
		kwSet("keep", "Sessions already open go on and count (default)", func(a *nameArgs) { a.keep = acl.Keep }),
		kwSet("reset", "Excess sessions are reset", func(a *nameArgs) { a.keep = acl.Reset }))
	existing := seq(kw("connlimit", "Connection limit settings"),
		kw("existing-sessions", "What happens to open sessions a new configuration would not admit"))
	return []*command{
		hostname, noHostname, slxHostname, noSLXHostname,
		enterCmd(accessList,
			func(e *env, a *nameArgs) error { _, err := e.cfg.EnsureACL(a.fam, a.name); return err },
			func(a *nameArgs) frame { return frame{kind: modeACL, fam: a.fam, name: a.name} }),
		cfgCmd(seq(no, accessList),
			func(e *env, a *nameArgs) error { return e.cfg.DeleteACL(a.fam, a.name) }),
		enterCmd(seq(kw("interface", "Select an interface to configure"), iface),
			func(e *env, a *nameArgs) error { _, err := e.cfg.EnsureInterface(a.ifKind, a.name); return err },
			func(a *nameArgs) frame { return frame{kind: modeIf, ifKind: a.ifKind, name: a.name} }),
		cfgCmd(seq(no, kw("interface", "Select an interface to configure"), iface),
			func(e *env, a *nameArgs) error { return e.cfg.DeleteInterface(a.ifKind, a.name) }),
		enterCmd(seq(kw("time-range", "Configure a time range"), trName),
			func(e *env, a *nameArgs) error { _, err := e.cfg.EnsureTimeRange(a.name); return err },
			func(a *nameArgs) frame { return frame{kind: modeTimeRange, name: a.name} }),
		cfgCmd(seq(no, kw("time-range", "Configure a time range"), trName),
			func(e *env, a *nameArgs) error { return e.cfg.DeleteTimeRange(a.name) }),
		cfgCmd(seq(existing, policy),
			func(e *env, a *nameArgs) error { e.cfg.ExistingSessions = a.keep; return nil }),
		cfgCmd(seq(no, existing, opt(alt(kw("keep", "Sessions already open go on and count (default)"), kw("reset", "Excess sessions are reset")))),
			func(e *env, a *nameArgs) error { e.cfg.ExistingSessions = acl.Keep; return nil }),
	}
}

// groupArgs are the arguments of (no) ip access-group.
type groupArgs struct {
	fam  acl.Family
	name string
	dir  acl.Direction
}

func ifCommands() []*command {
	group := seq(
		alt(kwSet("ip", "Apply an IPv4 access list", func(a *groupArgs) { a.fam = acl.IPv4 }),
			kwSet("ipv6", "Apply an IPv6 access list", func(a *groupArgs) { a.fam = acl.IPv6 })),
		kw("access-group", "Apply an access list to the interface"),
		wordArg(aclNames, "Access list name", func(a *groupArgs, s string) { a.name = s }),
		alt(kwSet("in", "Connections arriving on the interface", func(a *groupArgs) { a.dir = acl.In }),
			kwSet("out", "Connections leaving through the interface", func(a *groupArgs) { a.dir = acl.Out })))
	return []*command{
		cfgCmd(group, func(e *env, a *groupArgs) error {
			return e.cfg.SetAccessGroup(e.frame.ifKind, e.frame.name, a.fam, a.dir, a.name)
		}),
		cfgCmd(seq(kw("no", "Negate a command"), group), func(e *env, a *groupArgs) error {
			return e.cfg.ClearAccessGroup(e.frame.ifKind, e.frame.name, a.fam, a.dir, a.name)
		}),
	}
}

// trArgs are the arguments of periodic and absolute.
type trArgs struct {
	p   acl.Periodic
	abs acl.Absolute
	cur *acl.DateTime
}

func dayKw(word, help string, d acl.DaySpec) *atom {
	return kwSet(word, help, func(a *trArgs) { a.p.Days = d })
}

func timeRangeCommands() []*command {
	days := alt(
		dayKw("daily", "Every day", acl.Daily),
		dayKw("weekdays", "Monday to Friday", acl.Weekdays),
		dayKw("weekend", "Saturday and Sunday", acl.Weekend),
		dayKw("monday", "Mondays", acl.Monday),
		dayKw("tuesday", "Tuesdays", acl.Tuesday),
		dayKw("wednesday", "Wednesdays", acl.Wednesday),
		dayKw("thursday", "Thursdays", acl.Thursday),
		dayKw("friday", "Fridays", acl.Friday),
		dayKw("saturday", "Saturdays", acl.Saturday),
		dayKw("sunday", "Sundays", acl.Sunday))
	periodic := seq(kw("periodic", "A weekly recurring period"), days,
		timeArg("Start time", func(a *trArgs, m int) { a.p.Start = m }),
		kw("to", "End time follows"),
		timeArg("End time", func(a *trArgs, m int) { a.p.End = m }))
	when := func() node {
		return seq(
			timeArg("Time", func(a *trArgs, m int) { a.cur.Hour, a.cur.Minute = m/60, m%60 }),
			intArg(1, 31, "Day of the month", func(a *trArgs, n int) { a.cur.Day = n }),
			monthArg("Month (Jan-Dec)", func(a *trArgs, n int) { a.cur.Month = n }),
			intArg(acl.MinYear, acl.MaxYear, "Year", func(a *trArgs, n int) { a.cur.Year = n }))
	}
	startEnd := func() node {
		start := seq(kwSet("start", "Start of the range", func(a *trArgs) { a.cur = new(acl.DateTime); a.abs.Start = a.cur }), when())
		end := seq(kwSet("end", "End of the range", func(a *trArgs) { a.cur = new(acl.DateTime); a.abs.End = a.cur }), when())
		return alt(seq(start, opt(end)), end)
	}
	absolute := seq(kw("absolute", "A one-time period"), startEnd())
	no := kw("no", "Negate a command")
	return []*command{
		cfgCmd(periodic, func(e *env, a *trArgs) error { return e.cfg.AddPeriodic(e.frame.name, a.p) }),
		cfgCmd(seq(no, periodic), func(e *env, a *trArgs) error { return e.cfg.DeletePeriodic(e.frame.name, a.p) }),
		cfgCmd(absolute, func(e *env, a *trArgs) error { abs := a.abs; return e.cfg.SetAbsolute(e.frame.name, &abs) }),
		cfgCmd(seq(no, kw("absolute", "A one-time period"), opt(startEnd())), func(e *env, a *trArgs) error { return e.cfg.DeleteAbsolute(e.frame.name, &a.abs) }),
	}
}

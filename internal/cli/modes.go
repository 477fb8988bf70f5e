package cli

import (
	"io"
	"sync"

	"github.com/slxsh/slxsh/internal/acl"
)

// modeKind is a shell mode (SPEC §2).
type modeKind int

const (
	modeExec modeKind = iota
	modeConfig
	modeACL
	modeIf
	modeTimeRange
)

// frame is one level of the mode stack, with what entered it.
type frame struct {
	kind   modeKind
	fam    acl.Family // modeACL
	name   string     // ACL, interface or time-range name
	ifKind acl.IfKind // modeIf
}

// contextLine is the canonical line that enters the frame from global
// configuration mode ("" for exec and config).
func (f frame) contextLine() string {
	switch f.kind {
	case modeACL:
		return f.fam.String() + " access-list extended " + f.name
	case modeIf:
		return "interface " + acl.InterfaceLabel(f.ifKind, f.name)
	case modeTimeRange:
		return "time-range " + f.name
	}
	return ""
}

// promptSuffix is what follows the hostname in the prompt.
func (f frame) promptSuffix() string {
	switch f.kind {
	case modeConfig:
		return "(config)"
	case modeACL:
		if f.fam == acl.IPv6 {
			return "(conf-ip6acl-ext)"
		}
		return "(conf-ipacl-ext)"
	case modeIf:
		switch f.ifKind {
		case acl.IfManagement:
			return "(config-Management-" + f.name + ")"
		case acl.IfEthernet:
			return "(conf-if-eth-" + f.name + ")"
		}
		return "(conf-if-" + f.name + ")"
	case modeTimeRange:
		return "(config-time-range)"
	}
	return ""
}

// nav is a mode change that needs no backend.
type nav int

const (
	navNone   nav = iota
	navExit       // up one level
	navEnd        // back to exec
	navConfig     // configure terminal in a configuration mode: to global configuration
)

// env is what configuration handlers work on.
type env struct {
	cfg   *acl.Config
	frame frame     // the mode the line runs in
	tx    *txnState // what the transaction's earlier lines left for the next one
}

// txnState is what one line of a transaction leaves for the next: the
// remarks just added without a seq (numbered after the list's last entry)
// that an entry with an explicit seq may move in front of itself
// (placeRemarks). Any other line forgets them.
//
// It also counts the remarks of each visit of a list's mode (addRemark,
// addNumberedRemark): the Nth `remark T` of a visit is the list's Nth
// remark T.
type txnState struct {
	remarks []int // their seqs, in order
	list    frame
	kept    bool // set by the line that added one

	visit frame          // the list mode being visited
	had   map[string]int // the visited list's remarks by text (nil: to count again)
	seen  map[string]int // the remark lines of the visit by text
}

// enter starts a visit of list mode f.
func (tx *txnState) enter(f frame) { tx.visit, tx.had, tx.seen = f, nil, nil }

// countRemarks makes ready the counts of the visit of e's list (a remark
// in a list's mode that no line of the transaction entered starts one):
// had from the list as it is now, the first time.
func (tx *txnState) countRemarks(e *env) {
	if tx.visit != e.frame {
		tx.enter(e.frame)
	}
	if tx.seen == nil {
		tx.seen = map[string]int{}
	}
	if tx.had == nil {
		tx.had = map[string]int{}
		for _, x := range e.cfg.ACL(e.frame.fam, e.frame.name).Entries {
			if x.Action == acl.Remark {
				tx.had[x.Remark]++
			}
		}
	}
}

// command is one declared command: its syntax, its typed arguments, and
// what it does. Exactly one of apply, exec and nav is set.
type command struct {
	syntax  node
	newArgs func() any
	apply   func(e *env, args any) error                  // configuration change
	enter   func(args any) frame                          // sub-mode entered after apply
	exec    func(s *Session, w io.Writer, args any) error // exec command
	nav     nav
	after   func(s *Session, args any) // session bookkeeping after a successful apply
	// configure marks the exec commands that start with configure: in
	// configuration modes, configure terminal is a mode change instead.
	configure bool
	// changes marks the exec commands that change something (clear,
	// configure confirm, resequence): a script's configuration block
	// refuses them, since its exec commands run after it (block.add).
	changes bool
}

// cfgCmd declares a configuration command with typed arguments T.
func cfgCmd[T any](syntax node, run func(e *env, a *T) error) *command {
	return &command{
		syntax:  syntax,
		newArgs: func() any { return new(T) },
		apply:   func(e *env, a any) error { return run(e, a.(*T)) },
	}
}

// enterCmd declares a configuration command that enters a sub-mode.
func enterCmd[T any](syntax node, run func(e *env, a *T) error, enter func(a *T) frame) *command {
	c := cfgCmd(syntax, run)
	c.enter = func(a any) frame { return enter(a.(*T)) }
	return c
}

// execCmd declares an exec command with typed arguments T.
func execCmd[T any](syntax node, run func(s *Session, w io.Writer, a *T) error) *command {
	return &command{
		syntax:  syntax,
		newArgs: func() any { return new(T) },
		exec:    func(s *Session, w io.Writer, a any) error { return run(s, w, a.(*T)) },
	}
}

// navCmd declares exit or end.
func navCmd(syntax node, n nav) *command {
	return &command{syntax: syntax, newArgs: func() any { return new(struct{}) }, nav: n}
}

// grammar builds the root node of a list of commands.
func grammar(cmds []*command) node {
	a := make([]node, len(cmds))
	for i, c := range cmds {
		a[i] = cmdNode{c}
	}
	return alt(a...)
}

// The grammars of the modes, built once.
var (
	grammarsOnce sync.Once
	execRoot     node
	doRoot       node // exec commands without exit and end, for `do`
	configRoot   node
	aclRoots     [2]node // by family
	ifRoot       node
	trRoot       node
)

func buildGrammars() {
	// `do` refers to the exec grammar, which is built after it.
	exec := execCommands()
	var doCmds, inConfig []*command
	for _, c := range exec {
		if c.exec != nil {
			doCmds = append(doCmds, c)
			if !c.configure {
				inConfig = append(inConfig, c)
			}
		}
	}
	execRoot, doRoot = grammar(exec), grammar(doCmds)
	// Exec commands also work in configuration modes, as on SLX-OS (and
	// after `do`); configure terminal there goes to global configuration.
	common := func(cmds ...*command) node {
		cmds = append(cmds, inConfig...)
		return grammar(append(cmds,
			execCmdDo(refNode{&doRoot}),
			navCmd(seq(kw("configure", "Enter configuration mode"), kw("terminal", "Go to global configuration mode")), navConfig),
			navCmd(kw("exit", "Exit from the current mode"), navExit),
			navCmd(kw("end", "Exit to exec mode"), navEnd),
		))
	}
	configRoot = common(configCommands()...)
	aclRoots[acl.IPv4] = common(aclCommands(acl.IPv4)...)
	aclRoots[acl.IPv6] = common(aclCommands(acl.IPv6)...)
	ifRoot = common(ifCommands()...)
	trRoot = common(timeRangeCommands()...)
}

// grammarOf returns the grammar of the mode of f.
func grammarOf(f frame) node {
	grammarsOnce.Do(buildGrammars)
	switch f.kind {
	case modeConfig:
		return configRoot
	case modeACL:
		return aclRoots[f.fam]
	case modeIf:
		return ifRoot
	case modeTimeRange:
		return trRoot
	}
	return execRoot
}

// execCmdDo is `do CMD`: an exec command from a configuration mode. The
// matcher binds the exec command's own arguments (the last command marker).
func execCmdDo(execRef node) *command {
	return &command{
		syntax:  seq(kw("do", "Run an exec command"), execRef),
		newArgs: func() any { return new(NoArgs) },
		exec:    func(*Session, io.Writer, any) error { return nil },
	}
}

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// SessionTracker is the agent's session side (internal/conntrack, issue
// 5). Prepare, Installed, Renewals and Verify are called with the agent's
// lock held; the views (Sessions, Totals, Gated) and ClearSessions
// without it, with the running config of the moment.
type SessionTracker interface {
	// Prepare is called before rs is installed (the refresh loop pauses).
	Prepare(rs *nft.Ruleset) error
	// Installed is called after every install attempt with what the
	// kernel holds then (cfg as rs): it counts the sessions of limit sets
	// whose gate Apply created closed, and opens them.
	Installed(cfg *acl.Config, rs *nft.Ruleset) error
	// Sessions returns the current sessions per key of an ACL's limited
	// entries (seq 0: all entries).
	Sessions(cfg *acl.Config, f acl.Family, name string, seq int) ([]conntrack.KeyCount, error)
	// Totals returns, per limited entry and direction with sessions, its
	// sessions and keys at the limit, in one pass (show access-list ip,
	// metrics).
	Totals(cfg *acl.Config) ([]conntrack.EntryTotal, error)
	// ClearSessions resets sessions counted under an ACL (entry seq unless
	// 0, from the sources srcs unless none), from one conntrack dump.
	ClearSessions(cfg *acl.Config, f acl.Family, name string, seq int, srcs ...netip.Addr) error
	// Renewals returns the limit sets to start afresh because sessions
	// they did not count came to fall under them (picked up mid-stream) or
	// because their objects in the kernel drifted.
	Renewals() []string
	// Verify checks the limit sets' kernel counts against conntrack (after
	// someone else committed); what drifted comes back from Renewals.
	Verify() error
	// Gated returns the entries whose limit sets are still being counted
	// (gate closed: they refuse every connection).
	Gated() []conntrack.EntryID
}

// Options configure an Agent. Kernel and Compile are required.
type Options struct {
	Kernel  nft.Kernel
	Compile func(*acl.Config) (*nft.Ruleset, error) // nft.Compile bound to the table and interface options
	// MgmtFollowsRoute says that management 0 is the interface of the
	// default route (no --mgmt-interface), which can change: a config
	// that binds it is compiled again periodically (Recompile).
	MgmtFollowsRoute bool

	// StartupPath is the startup-config file (--config): loaded at start
	// and on Reload, written by Save.
	StartupPath string
	// StatePath keeps a copy of the running config for the agent's next
	// start in the same boot (it lives in /run): a restarted agent adopts
	// what it was running, not the startup-config. "" disables it.
	StatePath string
	// LastGoodPath keeps the last configuration applied successfully
	// where it survives a reboot (beside the startup-config): installed at
	// start when the startup-config cannot be loaded (boot.go). "" disables it.
	LastGoodPath string

	// Resolve maps an interface block to the Linux interface it means
	// (management 0 → --mgmt-interface, ethernet S/P → --interface-map);
	// "" when it maps to nothing.
	Resolve func(kind acl.IfKind, name string) string
	// InterfaceExists reports whether a Linux interface exists now; nil
	// means net.InterfaceByName in the agent's namespace.
	InterfaceExists func(name string) bool

	// Sessions is the session side (internal/conntrack, issue 5); nil
	// when not available: the session commands then answer with an error.
	Sessions SessionTracker

	// Messages serves the refuse message ports of the ruleset being
	// applied (a *Responder); nil: none are served, and a refusal with a
	// message is a reset (the kernel finds no listener).
	Messages MessageServer
	// Events keeps the events of log entries for show logging and the
	// metrics; nil: show logging says they are not read.
	Events *EventLog

	// LookupUser resolves `user NAME` as Compile does; entries of lists not
	// applied anywhere (which Compile does not see) whose user it cannot
	// resolve get a warning when they are entered. nil: no warning.
	LookupUser func(name string) (uint32, error)

	Version string // product version for show version
	// Load returns the 1-minute load average for load-limit; nil means
	// LoadAverage.
	Load func() (float64, error)
	// RevertUnit is the length of one "minute" of the revert timer; 0
	// means time.Minute (tests shorten it).
	RevertUnit time.Duration
	Logger     *slog.Logger
	// Zone is the local time zone of time ranges, the one Compile uses
	// (nil: time.Local): the agent recompiles when its UTC offset changes
	// and shows time ranges in it.
	Zone *time.Location
}

// Agent owns the running configuration and the kernel table. All changes
// go through one mutex: each is applied to the current running config,
// compiled, installed in the kernel, and only then committed, so two shells
// never lose each other's changes and a kernel refusal changes nothing.
type Agent struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	running   *acl.Config
	format    acl.Formatter   // of running, under mu: a change formats its new entries only
	state     []byte          // the state files' data, under mu
	lastState []byte          // the buffer of the save before (its data)
	stateOK   bool            // the state file holds lastState (its save wrote it)
	gen       uint64          // the generation of state (boot.go), under mu
	lastGood  *lastGoodWriter // LastGoodPath, written in the background
	ruleset   *nft.Ruleset    // what the kernel holds (last successful apply)
	hostDep   bool            // running's entries depend on the host (entriesHostDependent)
	// limitRanges are the time ranges of running whose switch concerns a
	// limit (timerange.go); switched tells Run that they may have changed.
	limitRanges []string
	switched    chan struct{}
	switchFrom  time.Time                      // the last switch crossed (or the start): nextSwitch looks after it
	baseline    map[string]uint64              // named counter values at the last `clear access-list counters`
	revert      *time.Timer                    // pending `configure terminal revert timer`
	revertGen   uint64                         // identifies the pending timer
	revertAt    time.Time                      // when the pending timer reverts
	flushed     map[string]map[netip.Addr]bool // blocked set -> sources whose sessions were flushed
	lockouts    map[string]lockoutSet          // blocked set -> its lockouts as last read (lockouts.go)
	// lockoutsForeign is the Kernel's ForeignCommits at that read.
	lockoutsForeign uint64
	started         time.Time
	repairs         atomic.Uint64 // drift repairs done
	// foreignSeen is the Kernel's ForeignCommits when the session side last
	// verified the counts (verifyCounts).
	foreignSeen atomic.Uint64
	// verifyAgain has the next drift check verify the counts whatever
	// ForeignCommits says (set element events were lost).
	verifyAgain atomic.Bool
	failures    atomic.Uint64 // failed applies (drift repair or reload)
	applyTook   atomic.Int64  // how long the last kernel apply took (ns)
	startup     startupStatus // why the startup-config was not loaded (boot.go)
	// unserved is why refuse message ports of the installed ruleset are
	// not open (another process holds them), nil when all are: their
	// refused clients are reset meanwhile, and Run tries again.
	unserved atomic.Pointer[error]
	// saveMu orders the saves (write memory) whole: the one that takes the
	// running config later writes it later, so the file never ends with an
	// older config than the last save reported written.
	saveMu sync.Mutex

	// What the views read without mu (shows and metrics never wait for a
	// change): the running config and the installed ruleset as published
	// by the change that made them, the baselines of the last clear, and
	// whether the startup-config loaded.
	live          atomic.Pointer[acl.Config]
	liveRules     atomic.Pointer[nft.Ruleset]
	liveBaselines atomic.Pointer[map[string]uint64]
	startupOK     atomic.Bool
}

// New returns an agent with an empty running config. Call Start to load the
// configuration and install it.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InterfaceExists == nil {
		opts.InterfaceExists = func(name string) bool {
			_, err := net.InterfaceByName(name)
			return err == nil
		}
	}
	if opts.Load == nil {
		opts.Load = LoadAverage
	}
	if opts.Resolve == nil {
		opts.Resolve = func(kind acl.IfKind, name string) string {
			if kind == acl.IfLinux {
				return name
			}
			return ""
		}
	}
	a := &Agent{opts: opts, log: opts.Logger, running: acl.New(), baseline: map[string]uint64{},
		flushed: map[string]map[netip.Addr]bool{}, started: time.Now(), switched: make(chan struct{}, 1),
		lastGood: newLastGoodWriter(opts.Logger)}
	a.switchFrom = a.started
	a.live.Store(a.running)
	a.startupOK.Store(true)
	return a
}

// current is the running config of the moment, read without the lock (a
// value: changes replace it).
func (a *Agent) current() *acl.Config { return a.live.Load() }

// Running returns a copy of the running config.
func (a *Agent) Running() *acl.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running.Clone()
}

// userErr is an error whose text is shown to the user as it is (it starts
// with "%").
type userErr string

// Error returns the message as shown to the user.
func (e userErr) Error() string { return string(e) }

func errorf(format string, args ...any) error { return userErr(fmt.Sprintf(format, args...)) }

// shellErr is a configuration model's error (nil: none) as the shell
// prints it: "% Error: ...".
func shellErr(err error) error {
	if err == nil {
		return nil
	}
	return &modelErr{userError(err), err}
}

// modelErr is a configuration model's or the compiler's error as the shell
// prints it, with the error it came from (whose path Configure maps to a
// line).
type modelErr struct {
	msg   string
	cause error
}

func (e *modelErr) Error() string { return e.msg }
func (e *modelErr) Unwrap() error { return e.cause }

// Configure applies one configuration transaction, all or nothing, to the
// current running config. A line that does not apply is returned as the
// *cli.LineError of cli.ApplyLines. It returns warnings to show the user
// (interfaces that do not exist).
func (a *Agent) Configure(t cli.Txn) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer collectIfLarge(allocated()) // collect.go
	next, err := cli.ApplyLines(a.running, t)
	if err != nil {
		return nil, err
	}
	held := a.heldLocked() // boot.go
	warns, err := a.installLocked(next, "configure")
	if err != nil {
		return nil, a.lineOfLocked(t, err)
	}
	if held {
		warns = append(warns, heldWarning)
	}
	return warns, nil
}

// lineOfLocked gives an error of the model or the compiler that names a
// part of the configuration (an *acl.Error's path: an entry, an
// interface) the line of t that made that part what it is, as a
// *cli.LineError: a scripted block's error then names that line, not the
// block's last.
func (a *Agent) lineOfLocked(t cli.Txn, err error) error {
	var ae *acl.Error
	if !errors.As(err, &ae) || ae.Path == "" {
		return err
	}
	i, ok := cli.LineOf(a.running, t, ae.Path)
	if !ok {
		return err
	}
	return &cli.LineError{Line: i, Text: t.Lines[i], Kind: cli.ErrSemantic, Msg: strings.TrimPrefix(err.Error(), "% Error: "), Cause: err}
}

// Replace installs cfg as the whole running config (used at start and on
// reload).
func (a *Agent) Replace(cfg *acl.Config, why string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer collectIfLarge(allocated())
	return a.installLocked(cfg, why)
}

// installLocked validates, compiles and installs next; on success it becomes
// the running config. On any error nothing changes.
func (a *Agent) installLocked(next *acl.Config, why string) ([]string, error) {
	t0 := time.Now()
	// The running config is valid: only what next changes is checked.
	if err := acl.ValidateChange(a.running, next); err != nil {
		return nil, shellErr(err)
	}
	rs, err := a.opts.Compile(next)
	if err != nil {
		return nil, shellErr(err)
	}
	t1 := time.Now()
	renew := nft.Renewals(a.ruleset, rs, a.running, next)
	unread := a.ruleset == nil // Renewals read nothing of rs
	if why == "adopt" {
		// The previous agent may have stopped before a time range
		// switched (timerange.go).
		renew = append(renew, nft.RangeRenewals(rs, next, allRanges)...)
	}
	t2 := time.Now()
	if err := a.applyLocked(next, rs, why, renew); err != nil {
		return nil, err
	}
	t3 := time.Now()
	if unread {
		// The next change reads rs as the ruleset before it: off its path.
		go nft.PrepareRenewals(rs, next)
	}
	prev := a.running
	a.running, a.ruleset, a.hostDep = next, rs, entriesHostDependent(next)
	if ranges := limitRanges(next); len(ranges) > 0 || len(a.limitRanges) > 0 {
		// A switch of next's ranges long before this change is no switch
		// to cross (a range added with a start in the past): next is
		// counted as of now. One a busy agent may have missed is recent.
		a.limitRanges, a.switchFrom = ranges, maxTime(a.switchFrom, t0.Add(-missedSwitchWindow))
		select { // Run looks for the next switch again (the ranges may have changed)
		case a.switched <- struct{}{}:
		default:
		}
	}
	a.live.Store(next)
	a.liveRules.Store(rs)
	a.armLoadLocked()
	a.pruneBaselinesLocked(prev)
	a.restartReplacedLocked(prev, next) // after the sessions are counted: the gates are open
	unsaved := a.saveStateLocked()
	if why != "configure" {
		prev = nil // start, reload, revert: warn about every binding
	}
	warns := append(a.interfaceWarningsLocked(prev), a.userWarningsLocked(prev)...)
	if unsaved != "" {
		warns = append(warns, unsaved)
	}
	if w := a.unservedWarning(); w != "" {
		warns = append(warns, w)
	}
	if a.revert != nil && why == "configure" {
		// The revert returns to the config of its arming, so this change
		// goes with it: the shell that commits it must know.
		warns = append(warns, fmt.Sprintf("%% Warning: a configure revert timer is running (until %s): unless someone enters configure confirm, the configuration returns to what it was when the timer started, this change included",
			a.revertAt.In(a.zone()).Format("15:04:05 MST")))
	}
	for _, w := range warns {
		a.log.Warn(w, "why", why)
	}
	a.log.Info("configuration applied", "why", why, "acls", len(next.ACLs), "interfaces", len(next.Interfaces),
		"compile", t1.Sub(t0).Round(time.Millisecond), "renewals", t2.Sub(t1).Round(time.Millisecond),
		"apply", t3.Sub(t2).Round(time.Millisecond), "total", time.Since(t0).Round(time.Millisecond))
	return warns, nil
}

// applyLocked installs rs (compiled from cfg) in the kernel, renewing the
// limit sets in renew, with the session tracker's steps around it: Apply
// creates new (and renewed) limit sets with their gates closed, and
// Installed counts the sessions already open and opens them, so no limit
// ever admits over it. A failed Installed is logged: the entries it
// concerns stay closed, which errs on refusing, and the refresh loop
// retries.
func (a *Agent) applyLocked(cfg *acl.Config, rs *nft.Ruleset, why string, renew []string) error {
	return a.applyAcrossLocked(cfg, rs, why, renew, time.Time{})
}

// applyAcrossLocked is applyLocked that counts the sessions only once the
// instant across has passed (a time range switch: the renewed limits stay
// gated across it; zero: at once).
func (a *Agent) applyAcrossLocked(cfg *acl.Config, rs *nft.Ruleset, why string, renew []string, across time.Time) error {
	if a.opts.Sessions != nil {
		if err := a.opts.Sessions.Prepare(rs); err != nil {
			a.log.Error("cannot prepare session counting", "why", why, "err", err)
			return errorf("%% Error: cannot prepare session counting, nothing changed: %v", err)
		}
	}
	if err := a.serveMessagesLocked(rs, why); err != nil {
		return err
	}
	t0 := time.Now()
	err := a.opts.Kernel.Apply(rs, renew...)
	a.applyTook.Store(int64(time.Since(t0)))
	if err != nil {
		a.log.Error("apply refused by the kernel", "why", why, "err", err)
		a.serveMessagesLocked(a.ruleset, "restore")
		if a.opts.Sessions != nil && a.ruleset != nil {
			// The kernel still holds the previous ruleset.
			a.opts.Sessions.Installed(a.running, a.ruleset)
		}
		return errorf("%% Error: the kernel refused the change, nothing changed: %v", err)
	}
	a.carryLockoutsLocked(a.running, cfg)
	if a.opts.Sessions == nil {
		// Without a session side nothing can count the sessions already
		// open: new limits count from now on (logged at start).
		if err := a.opts.Kernel.WriteReservations(nil, nil, nft.LimitSets(rs)); err != nil {
			a.log.Error("cannot open the gates of new limits", "why", why, "err", err)
		}
		return nil
	}
	if d := time.Until(across); d > 0 {
		time.Sleep(d + switchSlack)
	} else if !across.IsZero() {
		a.log.Warn("the gates of a time range switch's limits closed after the switch", "late", (-d).Round(time.Millisecond))
	}
	counted := cfg
	if cfg.ExistingSessions == acl.Reset && notNew[why] {
		keep := *cfg
		keep.ExistingSessions = acl.Keep
		counted = &keep
	}
	if err := a.opts.Sessions.Installed(counted, rs); err != nil {
		a.log.Warn("counting open sessions after apply failed", "why", why, "err", err)
	}
	return nil
}

// notNew are the installs that bring no new configuration: `connlimit
// existing-sessions reset` ends what a change no longer admits, and these
// are no change (a restarted agent adopting its table, a recompile for a
// new UTC offset or route, a time range switch: its sessions go on
// counted, as under keep). Drift repairs do reset, what the table let
// through while it was missing or wrong.
var notNew = map[string]bool{"adopt": true, "recompile": true, "time range switch": true}

// MessageServer answers the connections that the kernel redirects for
// `refuse message` (Responder).
type MessageServer interface {
	// Serve listens on exactly the ports of ms before it returns.
	Serve(ms []nft.Message) error
}

// serveMessagesLocked opens the responder ports of rs before the kernel
// redirects to them. A port that another process holds refuses an
// administrator's change (why "configure"), which can be fixed and sent
// again, unless ports were already not open before it (then the change,
// whatever it is, goes on, with the warning). Any other apply (start,
// reload, revert, drift repair, a recompile) goes on without it: the kernel resets a refused connection
// that reaches a listener other than the responder's (nft.ResponderMark),
// so the limits hold and the clients of that port get a reset instead of
// the line until Run opens it (RetryMessages). Refusing those applies would
// leave a starting agent with no configuration at all.
func (a *Agent) serveMessagesLocked(rs *nft.Ruleset, why string) error {
	if a.opts.Messages == nil || rs == nil {
		a.unserved.Store(nil)
		return nil
	}
	err := a.opts.Messages.Serve(rs.Messages)
	switch {
	case err == nil:
		if a.unserved.Swap(nil) != nil {
			a.log.Info("refuse message ports open again: refused clients get their line")
		}
		return nil
	case why != "configure" || a.unserved.Load() != nil:
		if a.unserved.Swap(&err) == nil { // once, not at every retry
			a.log.Error("refuse message ports not open: their refused clients are reset until they are; trying again every second", "why", why, "err", err)
		}
		return nil
	}
	a.log.Error("refuse message responder", "err", err)
	if a.ruleset != rs {
		a.opts.Messages.Serve(messagesOf(a.ruleset))
	}
	return errorf("%% Error: %v; nothing changed", err)
}

// RetryMessages opens the refuse message ports that another process held
// when the ruleset was installed (Run calls it every LoadInterval).
func (a *Agent) RetryMessages() {
	if a.unserved.Load() == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.unserved.Load() != nil {
		a.serveMessagesLocked(a.ruleset, "retry")
	}
}

// unservedWarning is what shells are told while refuse message ports are
// not open ("" when all are).
func (a *Agent) unservedWarning() string {
	if err := a.unserved.Load(); err != nil {
		return fmt.Sprintf("%% Warning: refused clients of some refuse message ports are reset, not answered: %v (the agent tries again every second)", *err)
	}
	return ""
}

func messagesOf(rs *nft.Ruleset) []nft.Message {
	if rs == nil {
		return nil
	}
	return rs.Messages
}

// saveStateLocked keeps the running config for a restarted agent (in
// StatePath, before the change is answered), and as the last good
// configuration (boot.go; written in the background, Flush waits for
// it). The kernel and the running config are already right: a state
// file that cannot be written is not the change's failure, but the shell
// that made it must know (its restart would not find it there), so it
// comes back as a warning ("" when saved); installLocked logs it.
func (a *Agent) saveStateLocked() (warning string) {
	if a.opts.StatePath == "" && a.opts.LastGoodPath == "" {
		return ""
	}
	// Two buffers, swapped: a 50k-entry config is megabytes, and the one
	// of the save before tells whether the file holds this one already (a
	// change that changed nothing): otherwise it is the next generation.
	data := a.format.Append(append(a.lastState[:0], fileHeader+"\n"...), a.running)
	body := len(data)
	data = appendStateTail(data, a.gen)
	same := bytes.Equal(data, a.state)
	if !same {
		a.gen++
		data = appendStateTail(data[:body], a.gen)
	}
	a.state, a.lastState = data, a.state
	if path := a.opts.StatePath; path != "" && !(a.stateOK && same) {
		err := writeFileInBoot(path, a.state, 0o600)
		if err != nil {
			warning = fmt.Sprintf("%% Warning: the change is applied, but the agent cannot save it in %s for its restart: %v", path, err)
		}
		a.stateOK = err == nil
	}
	if path := a.opts.LastGoodPath; path != "" {
		a.lastGood.queue(path, a.state, same)
	}
	return warning
}

// Flush waits for a change under way (a revert or a reload may still
// run when the server stops), then until the last good configuration
// saved by the last change is on disk: call it before the process exits.
func (a *Agent) Flush() {
	a.mu.Lock()
	a.mu.Unlock() // (only waits for the change that holds it)
	a.lastGood.w.Flush()
}

// userError turns an error into a line for the user, starting with "%".
func userError(err error) string {
	var ae *acl.Error
	if errors.As(err, &ae) {
		return "% Error: " + ae.Error()
	}
	msg := err.Error()
	if len(msg) > 0 && msg[0] == '%' {
		return msg
	}
	return "% Error: " + msg
}

// Save persists the running config as the startup-config, atomically.
func (a *Agent) Save() error {
	a.saveMu.Lock()
	defer a.saveMu.Unlock()
	a.mu.Lock()
	data := appendFrame(nil, func(b []byte) []byte { return a.format.Append(b, a.running) })
	a.mu.Unlock()
	if a.opts.StartupPath == "" {
		return userErr("% Error: no startup-config file (aclagent --config)")
	}
	// A startup-config that was not loaded is kept aside first (boot.go).
	if keep, err := a.keepUnloaded(); err != nil {
		a.log.Error("write memory failed: cannot keep the startup-config that was not loaded", "path", keep, "err", err)
		return errorf("%% Error: cannot keep the startup-config that was not loaded as %s, nothing written: %v", keep, err)
	} else if keep != "" {
		a.log.Warn("the startup-config that was not loaded is kept", "path", keep)
	}
	if err := writeFileAtomic(a.opts.StartupPath, data, 0o644); err != nil {
		a.log.Error("write memory failed", "path", a.opts.StartupPath, "err", err)
		return errorf("%% Error: cannot write startup-config: %v", err)
	}
	a.mu.Lock()
	a.setStartupLocked(startupStatus{})
	a.mu.Unlock()
	a.log.Info("startup-config written", "path", a.opts.StartupPath)
	a.Flush() // the last good configuration too, once the user asked for the disk
	return nil
}

// StartupText returns the startup-config file's text ("" when it does not
// exist), after comment lines saying why it was not loaded when it was not.
func (a *Agent) StartupText() (string, error) {
	if a.opts.StartupPath == "" {
		return "", nil
	}
	note := a.startupNote()
	data, _, err := readFileIfExists(a.opts.StartupPath)
	if err != nil && note == "" {
		return "", fmt.Errorf("read startup-config: %w", err)
	}
	return note + string(data), nil
}

// badLine quotes the line of a parse error, and the token the caret would
// point at, for the log, which has no room for a caret.
func badLine(err error) string {
	var le *cli.LineError
	if !errors.As(err, &le) || le.Text == "" {
		return ""
	}
	s := fmt.Sprintf(" (line %q", strings.TrimSpace(le.Text))
	if le.Caret() && le.Col >= 0 && le.Col < len(le.Text) {
		if tok := strings.Fields(le.Text[le.Col:]); len(tok) > 0 {
			s += fmt.Sprintf(", at %q", tok[0])
		}
	}
	return s + ")"
}

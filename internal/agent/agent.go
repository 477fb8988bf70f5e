package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// Kernel is what the agent needs from the nftables applier: install a
// ruleset in one transaction (reconciling in place, so that kept sets and
// named counters keep their state), tell whether the kernel still holds
// exactly that ruleset, and read the named counters.
type Kernel interface {
	Apply(rs *nft.Ruleset) error
	InSync(rs *nft.Ruleset) (bool, error)
	Counters() (map[string]uint64, error)
}

// Options configure an Agent. Kernel and Compile are required.
type Options struct {
	Kernel  Kernel
	Compile func(*acl.Config) (*nft.Ruleset, error) // nft.Compile bound to the table and interface options

	// StartupPath is the startup-config file (--config): loaded at start
	// and on Reload, written by WriteMemory.
	StartupPath string
	// StatePath keeps a copy of the running config for the agent's next
	// start in the same boot (it lives in /run): a restarted agent adopts
	// what it was running, not the startup-config. "" disables it.
	StatePath string

	// Resolve maps an interface block to the Linux interface it means
	// (management 0 → --mgmt-interface, ethernet S/P → --interface-map);
	// "" when it maps to nothing.
	Resolve func(kind acl.IfKind, name string) string
	// InterfaceExists reports whether a Linux interface exists now; nil
	// means net.InterfaceByName in the agent's namespace.
	InterfaceExists func(name string) bool

	Version string // product version for show version
	Logger  *slog.Logger
}

// Agent owns the running configuration and the kernel table. All changes
// go through one mutex: each is applied to the current running config,
// compiled, installed in the kernel, and only then committed, so two shells
// never lose each other's changes and a kernel refusal changes nothing.
type Agent struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	running  *acl.Config
	ruleset  *nft.Ruleset      // what the kernel holds (last successful apply)
	baseline map[string]uint64 // named counter values at the last `clear access-list counters`
	repairs  uint64            // drift repairs done
	failures uint64            // failed applies (drift repair or reload)
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
	if opts.Resolve == nil {
		opts.Resolve = func(kind acl.IfKind, name string) string {
			if kind == acl.IfLinux {
				return name
			}
			return ""
		}
	}
	return &Agent{opts: opts, log: opts.Logger, running: acl.New(), baseline: map[string]uint64{}}
}

// Running returns a copy of the running config.
func (a *Agent) Running() *acl.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.running.Clone()
}

// TxnError is a transaction that did not apply: the user-facing message
// (starting with "%") and, when known, the line of the transaction it is
// about (1-based) and the token index for the caret.
type TxnError struct {
	Msg  string
	Line int
	Col  int
}

func (e *TxnError) Error() string { return e.Msg }

// Txn applies one configuration transaction: lines entered in the mode that
// ctx describes, all or nothing, against the current running config. It
// returns warnings to show the user (missing interfaces).
func (a *Agent) Txn(ctx, lines []string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next, err := applyLines(a.running, ctx, lines)
	if err != nil {
		return nil, err
	}
	return a.installLocked(next, "txn")
}

// Replace installs cfg as the whole running config (used at start and on
// reload).
func (a *Agent) Replace(cfg *acl.Config, why string) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.installLocked(cfg, why)
}

// installLocked validates, compiles and installs next; on success it becomes
// the running config. On any error nothing changes.
func (a *Agent) installLocked(next *acl.Config, why string) ([]string, error) {
	if err := acl.Validate(next); err != nil {
		return nil, &TxnError{Msg: userError(err)}
	}
	rs, err := a.opts.Compile(next)
	if err != nil {
		return nil, &TxnError{Msg: userError(err)}
	}
	if err := a.opts.Kernel.Apply(rs); err != nil {
		a.log.Error("apply refused by the kernel", "why", why, "err", err)
		return nil, &TxnError{Msg: "% Error: the kernel refused the change, nothing changed: " + err.Error()}
	}
	a.running, a.ruleset = next, rs
	a.saveStateLocked()
	warns := a.interfaceWarningsLocked()
	for _, w := range warns {
		a.log.Warn(w, "why", why)
	}
	a.log.Info("configuration applied", "why", why, "acls", len(next.ACLs), "interfaces", len(next.Interfaces))
	return warns, nil
}

// saveStateLocked keeps the running config for a restarted agent. A failure
// is logged: the kernel and the running config are already right.
func (a *Agent) saveStateLocked() {
	if a.opts.StatePath == "" {
		return
	}
	if err := writeFileAtomic(a.opts.StatePath, []byte(acl.Format(a.running)), 0o600); err != nil {
		a.log.Warn("cannot save running-config state", "path", a.opts.StatePath, "err", err)
	}
}

// interfaceWarningsLocked lists interface blocks with access-groups whose
// Linux interface does not exist (yet): accepted, effective when it appears.
func (a *Agent) interfaceWarningsLocked() []string {
	var warns []string
	for _, ifc := range a.running.Interfaces {
		if ifc.Groups == [2][2]string{} {
			continue
		}
		dev := a.opts.Resolve(ifc.Kind, ifc.Name)
		switch {
		case dev == "":
			warns = append(warns, fmt.Sprintf("%% Warning: interface %s is not mapped to a Linux interface (see --mgmt-interface, --interface-map)", ifc.Label()))
		case !a.opts.InterfaceExists(dev):
			if ifc.Kind == acl.IfLinux {
				warns = append(warns, fmt.Sprintf("%% Warning: interface %s does not exist; the access-group takes effect when it appears", dev))
			} else {
				warns = append(warns, fmt.Sprintf("%% Warning: interface %s (%s) does not exist; the access-group takes effect when it appears", ifc.Label(), dev))
			}
		}
	}
	return warns
}

// userError turns an error into a line for the user, starting with "%".
func userError(err error) string {
	var te *TxnError
	if errors.As(err, &te) {
		return te.Msg
	}
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

// WriteMemory persists the running config as the startup-config, atomically.
func (a *Agent) WriteMemory() error {
	a.mu.Lock()
	text := acl.Format(a.running)
	a.mu.Unlock()
	if a.opts.StartupPath == "" {
		return &TxnError{Msg: "% Error: no startup-config file (aclagent --config)"}
	}
	if err := writeFileAtomic(a.opts.StartupPath, []byte(text), 0o644); err != nil {
		a.log.Error("write memory failed", "path", a.opts.StartupPath, "err", err)
		return &TxnError{Msg: "% Error: cannot write startup-config: " + err.Error()}
	}
	a.log.Info("startup-config written", "path", a.opts.StartupPath)
	return nil
}

// StartupText returns the startup-config file's text ("" when it does not exist).
func (a *Agent) StartupText() (string, error) {
	if a.opts.StartupPath == "" {
		return "", nil
	}
	data, _, err := readFileIfExists(a.opts.StartupPath)
	if err != nil {
		return "", fmt.Errorf("read startup-config: %w", err)
	}
	return string(data), nil
}

// loadFile reads and parses a config file; ok is false when it does not exist.
func loadFile(path string) (cfg *acl.Config, ok bool, err error) {
	data, ok, err := readFileIfExists(path)
	if err != nil || !ok {
		return nil, ok, err
	}
	cfg, err = parseConfig(path, string(data))
	if err != nil {
		return nil, true, err
	}
	return cfg, true, nil
}


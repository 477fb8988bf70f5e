package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// An operation is one thing the shell asks its backend (aclagent over its
// socket, or the in-memory backend). Each is declared once, below, as an
// Op value: its name, whether it changes state, and the types of its
// argument and result. The shell calls it with Call; a backend implements
// it with one Handle line in its Handlers table. The wire client carries
// any op without knowing it, and the agent decides who may call an op
// from the same declaration (Mutates), so a new show command cannot be
// refused as a change by forgetting a list.

// Op declares one backend operation: the name the agent knows it by,
// whether it changes state (and so needs an administrator), its argument
// type A and its result type R (both JSON-encodable).
type Op[A, R any] struct {
	Name    string
	Mutates bool
}

// NoArgs is the argument or result of operations that have none, and the
// argument struct of commands without arguments.
type NoArgs struct{}

// ACLRef names an access list, and optionally one entry and one source.
type ACLRef struct {
	Family acl.Family
	Name   string     // "" : all (ClearCounters)
	Seq    int        // 0 : all entries
	Source netip.Addr // invalid : all sources
	Dir    string     // "in" or "out": one direction (Counters); "" : both
}

// aclRefJSON is ACLRef on the wire: the family as "ip" or "ipv6".
type aclRefJSON struct {
	Family string     `json:"family"`
	Name   string     `json:"name,omitempty"`
	Seq    int        `json:"seq,omitempty"`
	Source netip.Addr `json:"source,omitzero"`
	Dir    string     `json:"dir,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (r ACLRef) MarshalJSON() ([]byte, error) {
	return json.Marshal(aclRefJSON{r.Family.String(), r.Name, r.Seq, r.Source, r.Dir})
}

// UnmarshalJSON implements json.Unmarshaler; the family must be ip or ipv6.
func (r *ACLRef) UnmarshalJSON(data []byte) error {
	var j aclRefJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	switch j.Family {
	case "ip":
		r.Family = acl.IPv4
	case "ipv6":
		r.Family = acl.IPv6
	default:
		return fmt.Errorf("bad family %q", j.Family)
	}
	if j.Dir != "" && j.Dir != "in" && j.Dir != "out" {
		return fmt.Errorf("bad direction %q", j.Dir)
	}
	r.Name, r.Seq, r.Source, r.Dir = j.Name, j.Seq, j.Source, j.Dir
	return nil
}

// BlockedSource is a source locked out by the block-for of an entry, with
// the time left.
type BlockedSource struct {
	Seq    int           `json:"seq"`
	Dir    acl.Direction `json:"dir"`
	Source netip.Addr    `json:"source"`
	Left   time.Duration `json:"left"`
	// All is a full blocked set's lockout of every source (Source unset).
	All bool `json:"all,omitempty"`
}

// InterfaceName is how the agent maps a configured interface to Linux.
type InterfaceName struct {
	Kind  acl.IfKind `json:"kind"`
	Name  string     `json:"name"`  // "0", "0/1", or a Linux name
	Linux string     `json:"linux"` // the Linux interface it means
}

// opMutates records every declared operation and whether it changes state.
var opMutates = map[string]bool{}

func newOp[A, R any](name string, mutates bool) Op[A, R] {
	if _, dup := opMutates[name]; dup {
		panic("cli: operation " + name + " declared twice")
	}
	opMutates[name] = mutates
	return Op[A, R]{Name: name, Mutates: mutates}
}

// MaxRevertMinutes is the longest revert timer (`configure terminal
// revert timer <1-1440>`, a day).
const MaxRevertMinutes = 1440

// CheckRevertMinutes refuses a revert timer out of 1..MaxRevertMinutes: the
// shell's matcher refuses it as typed, and a backend checks what a client
// sent it.
func CheckRevertMinutes(minutes int) error {
	if minutes < 1 || minutes > MaxRevertMinutes {
		return fmt.Errorf("%% Error: revert timer %d: must be 1 to %d minutes", minutes, MaxRevertMinutes)
	}
	return nil
}

// The operations.
var (
	OpRunning       = newOp[NoArgs, string]("running", false)  // the running-config text
	OpHostname      = newOp[NoArgs, string]("hostname", false) // the configured hostname ("" : none)
	OpConfigure     = newOp[Txn, []string]("configure", true)  // → warning lines
	OpStartup       = newOp[NoArgs, string]("startup", false)
	OpSave          = newOp[NoArgs, NoArgs]("save", true) // copy running-config startup-config
	OpRevert        = newOp[int, NoArgs]("revert", true)  // minutes: arm the revert timer
	OpConfirm       = newOp[NoArgs, NoArgs]("confirm", true)
	OpCounters      = newOp[ACLRef, []EntryCounters]("counters", false)
	OpSessions      = newOp[ACLRef, []SessionKey]("sessions", false) // Seq 0: all entries
	OpClearCounters = newOp[ACLRef, NoArgs]("clear-counters", true)  // Name "": all lists
	OpClearSessions = newOp[ACLRef, NoArgs]("clear-sessions", true)
	OpClearBlocked  = newOp[ACLRef, NoArgs]("clear-blocked", true)
	OpNftables      = newOp[NoArgs, string]("nftables", false) // the compiled ruleset
	// OpTimeRanges shows a time range (all with ""): active or not and
	// when it next changes, in the agent's time zone.
	OpTimeRanges = newOp[string, string]("time-ranges", false)
	// OpBlocked lists the sources locked out by block-for on an ACL.
	OpBlocked = newOp[ACLRef, []BlockedSource]("blocked", false)
	OpVersion = newOp[NoArgs, string]("version", false) // agent and kernel lines
	OpLogging = newOp[NoArgs, string]("logging", false) // recent events of log entries
	// OpPacketTrace evaluates a connection that has not happened yet
	// (packet-tracer, trace.go) with the backend's live counts.
	OpPacketTrace = newOp[TraceArgs, PacketTrace]("packet-tracer", false)
	// OpInterfaces maps `management 0` and `ethernet S/P` to the Linux
	// interfaces they mean.
	OpInterfaces = newOp[NoArgs, []InterfaceName]("interfaces", false)
	// OpConfigNames lists the names of the running config's ACLs and time
	// ranges (TAB completion).
	OpConfigNames = newOp[NoArgs, Names]("names", false)
	// OpMayConfigure changes nothing: it asks whether the caller may
	// change the configuration, so that `configure terminal` can refuse at
	// once. It is declared as a change so that the agent's authorisation
	// check answers it.
	OpMayConfigure = newOp[NoArgs, NoArgs]("may-configure", true)
)

// OpMutates reports whether the operation called name changes state.
// Unknown operations count as changes.
func OpMutates(name string) bool {
	m, ok := opMutates[name]
	return !ok || m
}

// OpNames returns the names of all declared operations, sorted.
func OpNames() []string {
	names := make([]string, 0, len(opMutates))
	for n := range opMutates {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Call performs op with argument a on b.
func Call[A, R any](b Backend, op Op[A, R], a A) (R, error) {
	var r R
	args, err := json.Marshal(a)
	if err != nil {
		return r, fmt.Errorf("encode %s: %w", op.Name, err)
	}
	raw, err := b.Do(op.Name, args)
	if err != nil {
		return r, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r); err != nil {
			return r, fmt.Errorf("%% Error: bad answer to %s: %v", op.Name, err)
		}
	}
	return r, nil
}

// Handlers implements operations on a state S (the agent's server, the
// memory backend), by name. Each returns its decoded argument with its
// result.
type Handlers[S any] map[string]func(s S, args json.RawMessage) (arg, result any, err error)

// Handle adds the implementation of op to h.
func Handle[S, A, R any](h Handlers[S], op Op[A, R], run func(s S, a A) (R, error)) {
	h[op.Name] = func(s S, raw json.RawMessage) (any, any, error) {
		var a A
		if len(raw) == 0 {
			return nil, nil, fmt.Errorf("%% Error: bad request: %s without its argument", op.Name)
		}
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, nil, fmt.Errorf("%% Error: bad request: %s: %v", op.Name, err)
		}
		r, err := run(s, a)
		return a, r, err
	}
}

// ErrUnknownOp is the error of Run for an operation h does not implement.
var ErrUnknownOp = errors.New("unknown operation")

// Run performs the operation called name on s and returns its result
// encoded.
func (h Handlers[S]) Run(s S, name string, args json.RawMessage) (json.RawMessage, error) {
	_, r, err := h.RunValue(s, name, args)
	if err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// RunValue is Run with the result as the operation returned it, for a
// caller that encodes it as it writes it (the agent's server), and the
// argument as it was decoded (what the agent's audit log says of a
// change: a 50k-line transaction is not decoded twice).
func (h Handlers[S]) RunValue(s S, name string, args json.RawMessage) (arg, result any, err error) {
	run, ok := h[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownOp, name)
	}
	return run(s, args)
}

// Names are the names TAB completes: the ACLs of each family and the time
// ranges of a configuration, each sorted.
type Names struct {
	IP, IPv6   []string `json:",omitempty"`
	TimeRanges []string `json:",omitempty"`
}

// NamesOf lists the names of c.
func NamesOf(c *acl.Config) Names {
	var n Names
	for _, l := range c.ACLs {
		if l.Family == acl.IPv6 {
			n.IPv6 = append(n.IPv6, l.Name)
		} else {
			n.IP = append(n.IP, l.Name)
		}
	}
	for _, t := range c.TimeRanges {
		n.TimeRanges = append(n.TimeRanges, t.Name)
	}
	slices.Sort(n.IP)
	slices.Sort(n.IPv6)
	slices.Sort(n.TimeRanges)
	return n
}

// of returns the names of kind k for a line of tokens toks: ACLs of the
// family its last "ip" or "ipv6" keyword names, of both without one.
func (n Names) of(k nameKind, toks []token) []string {
	switch k {
	case timeRangeNames:
		return n.TimeRanges
	case aclNames:
		for i := len(toks) - 1; i >= 0; i-- {
			switch strings.ToLower(toks[i].text) {
			case "ip":
				return n.IP
			case "ipv6":
				return n.IPv6
			}
		}
		return append(slices.Clone(n.IP), n.IPv6...)
	}
	return nil
}

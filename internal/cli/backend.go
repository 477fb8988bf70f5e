package cli

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
)

// Backend is what the shell talks to: the owner of the running
// configuration. The agent implements it over its socket; NewMemoryBackend
// keeps the configuration in the shell's memory.
//
// Errors are shown to the user as they are: an error whose text starts
// with "%" is printed verbatim, any other as "% Error: " + text. Configure
// should return the *LineError of ApplyLines (or one rebuilt from its
// fields after crossing the socket) so that scripts can name the line.
type Backend interface {
	// Running returns the running configuration (the caller may not modify it).
	Running() (*acl.Config, error)
	// Configure applies one transaction atomically: ApplyLines on the
	// current running config, then install the result. On error nothing
	// changes.
	Configure(t Txn) error
	// Do performs every other operation (ops.go): the one called name,
	// with its argument encoded as JSON; it returns the result encoded.
	// Callers use Call. An operation the backend does not implement
	// fails with ErrNoAgent.
	Do(name string, args json.RawMessage) (json.RawMessage, error)
}

// EntryCounters are the counters of one ACL entry.
type EntryCounters struct {
	Seq     int
	Matches uint64 // connections that matched the entry
	Refused uint64 // connections the entry refused
	AtLimit int    // keys now at the entry's connection limit
	// Reasons splits Refused by the limit that refused ("connlimit",
	// "rate", "quota", "load"). The line of Seq 0 is the ACL's own: its
	// implicit deny's refusals in Refused, Reasons["blocked"] the
	// connections refused because block-for locked their source out.
	Reasons map[string]uint64 `json:",omitempty"`
}

// SessionKey is one key of a limited entry with its current sessions.
type SessionKey struct {
	Seq int
	// Per is what the key's limit counts by ("per-source", "per-prefix
	// 24", ...): an entry may have several connlimits, each with its keys.
	Per      string `json:",omitempty"`
	Key      string // source address, prefix, destination, or "total"
	Sessions int
	// Old is how many of Sessions were open before the limit existed
	// (counted by the agent, not by the kernel's own count).
	Old   int `json:",omitempty"`
	Limit int
	// AtLimit is true when the key's next connection would be refused, as
	// the agent computes it from the kernel's state: Sessions >= Limit for
	// a permit, Sessions >= Limit-1 for a deny (a limited deny refuses the
	// Nth connection).
	AtLimit bool
	// Resets, for the key of a rate or quota window (Per says which), is
	// the time until its window ends; Sessions and Limit are then unused.
	Resets time.Duration `json:",omitempty"`
	// QuotaUsed and Quota are the bytes a quota window has used and may
	// use (Per "quota window"; Quota 0 when the kernel did not say).
	QuotaUsed uint64 `json:",omitempty"`
	Quota     uint64 `json:",omitempty"`
}

// ErrNoAgent is returned by the memory backend for what only the agent can
// answer.
var ErrNoAgent = errors.New("% Error: this command needs aclagent")

// memoryBackend keeps the configuration in memory.
type memoryBackend struct {
	mu      sync.Mutex
	running *acl.Config
	startup string
	revert  *time.Timer
	minute  time.Duration // the revert timer's unit; shortened in tests
}

// NewMemoryBackend returns a Backend that keeps c (nil: empty) in memory.
// Save keeps the startup-config text in memory too. Agent-only commands
// fail with ErrNoAgent.
func NewMemoryBackend(c *acl.Config) Backend {
	if c == nil {
		c = acl.New()
	}
	return &memoryBackend{running: c.Clone(), minute: time.Minute}
}

func (b *memoryBackend) Running() (*acl.Config, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.running.Clone(), nil
}

func (b *memoryBackend) Configure(t Txn) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, err := ApplyLines(b.running, t)
	if err != nil {
		return err
	}
	b.running = c
	return nil
}

// Do implements Backend from memoryOps.
func (b *memoryBackend) Do(name string, args json.RawMessage) (json.RawMessage, error) {
	out, err := memoryOps.Run(b, name, args)
	if errors.Is(err, ErrUnknownOp) {
		return nil, ErrNoAgent
	}
	return out, err
}

// memoryOps are the operations the memory backend implements; the others
// (counters, sessions, nftables, ...) need aclagent.
var memoryOps = Handlers[*memoryBackend]{}

func init() {
	Handle(memoryOps, OpRunning, func(b *memoryBackend, _ NoArgs) (string, error) {
		c, err := b.Running()
		return acl.Format(c), err
	})
	Handle(memoryOps, OpHostname, func(b *memoryBackend, _ NoArgs) (string, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.running.Hostname, nil
	})
	Handle(memoryOps, OpConfigure, func(b *memoryBackend, t Txn) ([]string, error) { return nil, b.Configure(t) })
	Handle(memoryOps, OpConfigNames, func(b *memoryBackend, _ NoArgs) (Names, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return NamesOf(b.running), nil
	})
	Handle(memoryOps, OpStartup, func(b *memoryBackend, _ NoArgs) (string, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.startup, nil
	})
	Handle(memoryOps, OpSave, func(b *memoryBackend, _ NoArgs) (NoArgs, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.startup = acl.Format(b.running)
		return NoArgs{}, nil
	})
	Handle(memoryOps, OpRevert, (*memoryBackend).revertIn)
	Handle(memoryOps, OpConfirm, (*memoryBackend).confirm)
	Handle(memoryOps, OpPacketTrace, (*memoryBackend).packetTrace)
	Handle(memoryOps, OpMayConfigure, func(*memoryBackend, NoArgs) (NoArgs, error) { return NoArgs{}, nil })
	Handle(memoryOps, OpVersion, func(*memoryBackend, NoArgs) (string, error) {
		kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
		return "Agent: none (configuration kept in memory)\nKernel: Linux " + strings.TrimSpace(string(kernel)) + "\n", nil
	})
}

func (b *memoryBackend) revertIn(minutes int) (NoArgs, error) {
	if err := CheckRevertMinutes(minutes); err != nil {
		return NoArgs{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revert != nil {
		return NoArgs{}, errors.New("% Error: a revert timer is already running; configure confirm first")
	}
	saved := b.running.Clone()
	b.revert = time.AfterFunc(time.Duration(minutes)*b.minute, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.running, b.revert = saved, nil
	})
	return NoArgs{}, nil
}

func (b *memoryBackend) confirm(NoArgs) (NoArgs, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revert == nil {
		return NoArgs{}, errors.New("% Error: no revert timer is running")
	}
	b.revert.Stop()
	b.revert = nil
	return NoArgs{}, nil
}

// packetTrace evaluates a trace on the configuration in memory; nothing
// is counted without a kernel.
func (b *memoryBackend) packetTrace(a TraceArgs) (PacketTrace, error) {
	c, err := b.Running()
	if err != nil {
		return PacketTrace{}, err
	}
	c, l, asIf, err := TraceConfig(c, a)
	if err != nil {
		return PacketTrace{}, err
	}
	t := RunTrace(c, l, asIf, a, acl.TraceState{Now: time.Now()}, "none (no aclagent: no sessions are counted)")
	if a.Detail && l != nil {
		t.Rules = []string{"(no aclagent: nothing is compiled)"}
	}
	return t, nil
}

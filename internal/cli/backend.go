package cli

import (
	"errors"
	"net/netip"
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
	// Startup returns the text of the startup-config.
	Startup() (string, error)
	// Save persists the running config as the startup-config.
	Save() error
	// Revert arms a revert timer: unless Confirm is called within minutes,
	// the running config returns to what it is now.
	Revert(minutes int) error
	// Confirm cancels a pending revert timer.
	Confirm() error
	// Counters returns the per-entry counters of an ACL, in seq order.
	Counters(f acl.Family, name string) ([]EntryCounters, error)
	// Sessions returns the current sessions per key of an ACL's limited
	// entries (seq 0: all entries).
	Sessions(f acl.Family, name string, seq int) ([]SessionKey, error)
	// ClearCounters zeroes the counters of an ACL ("" : all ACLs).
	ClearCounters(f acl.Family, name string) error
	// ClearSessions resets the sessions counted under an ACL, optionally
	// only those of one entry (seq != 0) and one source (valid source).
	ClearSessions(f acl.Family, name string, seq int, source netip.Addr) error
	// ClearBlocked lifts block-for lockouts of an ACL (all sources unless
	// source is valid).
	ClearBlocked(f acl.Family, name string, source netip.Addr) error
	// Nftables returns the compiled ruleset as nft text.
	Nftables() (string, error)
	// Version describes the backend: agent version, kernel, ... (lines).
	Version() (string, error)
	// Logging returns the recent events of log entries, newest last.
	Logging() (string, error)
}

// Permission is implemented by backends that can tell whether this user
// may change the configuration before any change is sent: `configure
// terminal` then answers "% Error: permission denied" at once instead of
// entering a mode where every line would be refused.
type Permission interface {
	// MayConfigure returns nil when the user may change the
	// configuration, else the error to show.
	MayConfigure() error
}

// EntryCounters are the counters of one ACL entry.
type EntryCounters struct {
	Seq     int
	Matches uint64 // connections that matched the entry
	Refused uint64 // connections the entry refused
	AtLimit int    // keys now at the entry's connection limit
}

// SessionKey is one key of a limited entry with its current sessions.
type SessionKey struct {
	Seq      int
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

func (b *memoryBackend) Startup() (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.startup, nil
}

func (b *memoryBackend) Save() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.startup = acl.Format(b.running)
	return nil
}

func (b *memoryBackend) Revert(minutes int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revert != nil {
		return errors.New("% Error: a revert timer is already running; configure confirm first")
	}
	saved := b.running.Clone()
	b.revert = time.AfterFunc(time.Duration(minutes)*b.minute, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.running, b.revert = saved, nil
	})
	return nil
}

func (b *memoryBackend) Confirm() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.revert == nil {
		return errors.New("% Error: no revert timer is running")
	}
	b.revert.Stop()
	b.revert = nil
	return nil
}

func (b *memoryBackend) Counters(acl.Family, string) ([]EntryCounters, error) {
	return nil, ErrNoAgent
}

func (b *memoryBackend) Sessions(acl.Family, string, int) ([]SessionKey, error) {
	return nil, ErrNoAgent
}

func (b *memoryBackend) ClearCounters(acl.Family, string) error { return ErrNoAgent }

func (b *memoryBackend) ClearSessions(acl.Family, string, int, netip.Addr) error {
	return ErrNoAgent
}

func (b *memoryBackend) ClearBlocked(acl.Family, string, netip.Addr) error { return ErrNoAgent }

func (b *memoryBackend) Nftables() (string, error) { return "", ErrNoAgent }

func (b *memoryBackend) Logging() (string, error) { return "", ErrNoAgent }

func (b *memoryBackend) Version() (string, error) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Agent: none (configuration kept in memory)\nKernel: Linux " + strings.TrimSpace(string(kernel)) + "\n", nil
}

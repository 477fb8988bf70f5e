// Package wire is the protocol between slxsh and aclagent, and the shell's
// side of it: typed JSON messages over a local unix socket, one request and
// one response per connection, versioned. It imports no kernel code, so
// slxsh, which uses Client as its cli.Backend, never links netlink.
package wire

import "github.com/slxsh/slxsh/internal/cli"

// ProtocolVersion is the version of the wire protocol. A request carrying
// another version is refused, so that a shell and an agent from different
// builds fail clearly instead of misreading each other.
const ProtocolVersion = 1

// Op names a request. The operations mirror cli.Backend one to one.
type Op string

// Requests. Those that change state need an administrator (see mutates);
// the others may be sent by anyone who can reach the socket.
const (
	OpRunning       Op = "running"        // → Text: the running-config
	OpStartup       Op = "startup"        // → Text: the startup-config
	OpConfigure     Op = "configure"      // Txn → Warnings, or LineError / Error
	OpSave          Op = "save"           // copy running-config startup-config
	OpRevert        Op = "revert"         // Minutes: arm the revert timer
	OpConfirm       Op = "confirm"        // cancel the revert timer
	OpCounters      Op = "counters"       // Family, Name → Counters
	OpSessions      Op = "sessions"       // Family, Name, Seq → Sessions
	OpClearCounters Op = "clear-counters" // Family, Name ("" : all)
	OpClearSessions Op = "clear-sessions" // Family, Name, Seq, Source
	OpClearBlocked  Op = "clear-blocked"  // Family, Name, Source
	OpNftables      Op = "nftables"       // → Text: the compiled ruleset
	OpVersion       Op = "version"        // → Text: versions and kernel
	OpLogging       Op = "logging"        // → Text: recent log events
	// OpMayConfigure changes nothing: it asks whether the peer may change
	// the configuration (an administrator), so that `configure terminal`
	// can refuse at once. Mutates reports it as a change, so the agent's
	// authorisation check answers it.
	OpMayConfigure Op = "may-configure"
)

// Mutates reports whether an operation changes state (and so needs an
// administrator). Unknown operations count as changes.
func Mutates(op Op) bool {
	switch op {
	case OpRunning, OpStartup, OpCounters, OpSessions, OpNftables, OpVersion, OpLogging:
		return false
	}
	return true
}

// Request is one message from the shell to the agent: the operation and
// its arguments (only those the operation uses are set).
type Request struct {
	Version int      `json:"version"`
	Op      Op       `json:"op"`
	Txn     *cli.Txn `json:"txn,omitempty"`
	Family  string   `json:"family,omitempty"` // "ip" or "ipv6"
	Name    string   `json:"name,omitempty"`   // ACL name
	Seq     int      `json:"seq,omitempty"`    // entry, 0 for all
	Source  string   `json:"source,omitempty"` // source address, "" for all
	Minutes int      `json:"minutes,omitempty"`
}

// Response is the agent's answer to one Request.
type Response struct {
	Version   int                 `json:"version"`
	Error     string              `json:"error,omitempty"`      // user-facing, starts with "%"; "" on success
	LineError *cli.LineError      `json:"line_error,omitempty"` // Configure: the line that failed
	Warnings  []string            `json:"warnings,omitempty"`   // user-facing lines, each starting with "%"
	Text      string              `json:"text,omitempty"`
	Counters  []cli.EntryCounters `json:"counters,omitempty"`
	Sessions  []cli.SessionKey    `json:"sessions,omitempty"`
}

// Package wire is the protocol between slxsh and aclagent, and the shell's
// side of it: typed JSON messages over a local unix socket, one request and
// one response per connection, versioned. It imports no kernel code, so
// slxsh, which uses Client as its cli.Backend, never links netlink.
//
// The operations themselves are declared in internal/cli (cli.Op: name,
// whether it changes state, argument and result types); the wire carries
// any of them as the operation's name with its argument and result as
// JSON, so a new operation needs nothing here.
package wire

import (
	"encoding/json"

	"github.com/slxsh/slxsh/internal/cli"
)

// ProtocolVersion is the version of the wire protocol. A request carrying
// another version is refused, so that a shell and an agent from different
// builds fail clearly instead of misreading each other.
const ProtocolVersion = 2

// Request is one message from the shell to the agent: an operation (a
// cli.Op's Name) and its argument.
type Request struct {
	Version int             `json:"version"`
	Op      string          `json:"op"`
	Args    json.RawMessage `json:"args,omitempty"`
}

// Response is the agent's answer to one Request.
type Response struct {
	Version   int             `json:"version"`
	Error     string          `json:"error,omitempty"`      // user-facing, starts with "%"; "" on success
	LineError *cli.LineError  `json:"line_error,omitempty"` // Configure: the line that failed
	Result    json.RawMessage `json:"result,omitempty"`     // the operation's result
	// Value is the result not encoded yet, for the agent's server to
	// encode as it writes it (Result must then be empty).
	Value any `json:"-"`
}

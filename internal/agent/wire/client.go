package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

// DefaultSocket is where aclagent listens unless --socket or SLXSH_SOCKET
// say otherwise.
const DefaultSocket = "/run/slxsh/aclagent.sock"

// SocketPath returns the socket to use: flag when set, else $SLXSH_SOCKET,
// else DefaultSocket.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("SLXSH_SOCKET"); env != "" {
		return env
	}
	return DefaultSocket
}

// Client is the shell's side: a cli.Backend that sends every call to
// aclagent, one connection per request, so a restarted agent is simply
// reached again by the next request.
type Client struct {
	Socket  string
	Timeout time.Duration // per request; 0 means 60 s
	// Warnings receives the agent's warning lines after a successful
	// Configure (e.g. an interface that does not exist yet); nil: stderr.
	Warnings io.Writer

	mu       sync.Mutex
	lastText string      // the running-config text last parsed
	lastCfg  *acl.Config // ... and what it parsed to
}

var _ cli.Backend = (*Client)(nil)

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client { return &Client{Socket: path} }

// ReachError is an agent that cannot be reached.
type ReachError struct {
	Socket string
	Err    error
}

// Error returns the message shown to the user.
func (e *ReachError) Error() string {
	return fmt.Sprintf("%% Error: cannot reach aclagent at %s: %v", e.Socket, e.Err)
}

// Unwrap returns the dial or I/O error.
func (e *ReachError) Unwrap() error { return e.Err }

// RemoteError is an error the agent answered with; its text starts with "%".
type RemoteError string

// Error returns the agent's message.
func (e RemoteError) Error() string { return string(e) }

// Ping checks that the agent answers.
func (c *Client) Ping() error {
	_, err := cli.Call(c, cli.OpVersion, cli.NoArgs{})
	return err
}

// Do implements cli.Backend: one request for any operation. An answer
// carrying an error is returned as that error: the rebuilt *cli.LineError
// for a line that did not apply, otherwise the agent's message (starting
// with "%").
func (c *Client) Do(op string, args json.RawMessage) (json.RawMessage, error) {
	req := Request{Version: ProtocolVersion, Op: op, Args: args}
	timeout := c.Timeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	conn, err := net.DialTimeout("unix", c.Socket, timeout)
	if err != nil {
		return nil, &ReachError{Socket: c.Socket, Err: err}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if err := json.NewEncoder(conn).Encode(&req); err != nil {
		// The agent may have refused the request before it was all sent
		// (too large) and said why: that is the answer.
		var resp Response
		conn.SetReadDeadline(time.Now().Add(3 * time.Second)) // the agent holds a refusal 0.5 s (listen.go)
		if json.NewDecoder(conn).Decode(&resp) == nil && resp.Error != "" {
			return nil, RemoteError(resp.Error)
		}
		return nil, &ReachError{Socket: c.Socket, Err: fmt.Errorf("send: %w", err)}
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		// The agent may have applied the request before it went away.
		return nil, &ReachError{Socket: c.Socket, Err: fmt.Errorf("no answer, the request may or may not have been applied: %w", err)}
	}
	switch {
	case resp.LineError != nil:
		return nil, resp.LineError
	case resp.Error != "":
		return nil, RemoteError(resp.Error)
	}
	return resp.Result, nil
}

// Running implements cli.Backend: the agent's running-config, parsed. The
// text crosses the socket every time (another shell may have changed it);
// parsing is skipped when it is the text parsed last time, which matters
// for large configs since the shell asks before every prompt.
func (c *Client) Running() (*acl.Config, error) {
	text, err := cli.Call(c, cli.OpRunning, cli.NoArgs{})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastCfg != nil && text == c.lastText {
		return c.lastCfg, nil
	}
	cfg, err := cli.ParseConfig(text)
	if err != nil {
		return nil, RemoteError(fmt.Sprintf("%% Error: cannot read the agent's running-config: %v", err))
	}
	c.lastText, c.lastCfg = text, cfg
	return cfg, nil
}

// Configure implements cli.Backend; the agent's warnings go to Warnings.
func (c *Client) Configure(t cli.Txn) error {
	warns, err := cli.Call(c, cli.OpConfigure, t)
	if err == nil && len(warns) > 0 {
		w := c.Warnings
		if w == nil {
			w = os.Stderr
		}
		for _, line := range warns {
			fmt.Fprintln(w, line)
		}
	}
	return err
}

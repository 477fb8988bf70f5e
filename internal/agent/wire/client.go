package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
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

var (
	_ cli.Backend    = (*Client)(nil)
	_ cli.Permission = (*Client)(nil)
)

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
	_, err := c.do(&Request{Op: OpVersion})
	return err
}

// do sends one request and returns the response. An answer carrying an
// error is returned as that error: the rebuilt *cli.LineError for a line
// that did not apply, otherwise the agent's message (starting with "%").
func (c *Client) do(req *Request) (*Response, error) {
	req.Version = ProtocolVersion
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
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		return nil, &ReachError{Socket: c.Socket, Err: fmt.Errorf("send: %w", err)}
	}
	var resp Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		// The agent may have applied the request before it went away.
		return nil, &ReachError{Socket: c.Socket, Err: fmt.Errorf("no answer, the request may or may not have been applied: %w", err)}
	}
	switch {
	case resp.LineError != nil:
		return &resp, resp.LineError
	case resp.Error != "":
		return &resp, RemoteError(resp.Error)
	}
	return &resp, nil
}

// Running implements cli.Backend: the agent's running-config, parsed. The
// text crosses the socket every time (another shell may have changed it);
// parsing is skipped when it is the text parsed last time, which matters
// for large configs since the shell asks before every prompt.
func (c *Client) Running() (*acl.Config, error) {
	resp, err := c.do(&Request{Op: OpRunning})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastCfg != nil && resp.Text == c.lastText {
		return c.lastCfg, nil
	}
	cfg, err := cli.ParseConfig(resp.Text)
	if err != nil {
		return nil, RemoteError(fmt.Sprintf("%% Error: cannot read the agent's running-config: %v", err))
	}
	c.lastText, c.lastCfg = resp.Text, cfg
	return cfg, nil
}

// Configure implements cli.Backend.
func (c *Client) Configure(t cli.Txn) error {
	resp, err := c.do(&Request{Op: OpConfigure, Txn: &t})
	if err == nil && len(resp.Warnings) > 0 {
		w := c.Warnings
		if w == nil {
			w = os.Stderr
		}
		for _, line := range resp.Warnings {
			fmt.Fprintln(w, line)
		}
	}
	return err
}

// Startup implements cli.Backend.
func (c *Client) Startup() (string, error) { return c.text(OpStartup) }

// Save implements cli.Backend.
func (c *Client) Save() error { return c.simple(&Request{Op: OpSave}) }

// Revert implements cli.Backend.
func (c *Client) Revert(minutes int) error {
	return c.simple(&Request{Op: OpRevert, Minutes: minutes})
}

// Confirm implements cli.Backend.
func (c *Client) Confirm() error { return c.simple(&Request{Op: OpConfirm}) }

// Counters implements cli.Backend.
func (c *Client) Counters(f acl.Family, name string) ([]cli.EntryCounters, error) {
	resp, err := c.do(&Request{Op: OpCounters, Family: f.String(), Name: name})
	if err != nil {
		return nil, err
	}
	return resp.Counters, nil
}

// Sessions implements cli.Backend.
func (c *Client) Sessions(f acl.Family, name string, seq int) ([]cli.SessionKey, error) {
	resp, err := c.do(&Request{Op: OpSessions, Family: f.String(), Name: name, Seq: seq})
	if err != nil {
		return nil, err
	}
	return resp.Sessions, nil
}

// ClearCounters implements cli.Backend.
func (c *Client) ClearCounters(f acl.Family, name string) error {
	return c.simple(&Request{Op: OpClearCounters, Family: f.String(), Name: name})
}

// ClearSessions implements cli.Backend.
func (c *Client) ClearSessions(f acl.Family, name string, seq int, src netip.Addr) error {
	return c.simple(&Request{Op: OpClearSessions, Family: f.String(), Name: name, Seq: seq, Source: addrString(src)})
}

// ClearBlocked implements cli.Backend.
func (c *Client) ClearBlocked(f acl.Family, name string, src netip.Addr) error {
	return c.simple(&Request{Op: OpClearBlocked, Family: f.String(), Name: name, Source: addrString(src)})
}

// MayConfigure implements cli.Permission: nil when the agent lets this
// user change the configuration, else its "% Error: permission denied".
func (c *Client) MayConfigure() error { return c.simple(&Request{Op: OpMayConfigure}) }

// Nftables implements cli.Backend.
func (c *Client) Nftables() (string, error) { return c.text(OpNftables) }

// Logging implements cli.Backend.
func (c *Client) Logging() (string, error) { return c.text(OpLogging) }

// Version implements cli.Backend.
func (c *Client) Version() (string, error) { return c.text(OpVersion) }

func (c *Client) text(op Op) (string, error) {
	resp, err := c.do(&Request{Op: op})
	if err != nil {
		return "", err
	}
	return resp.Text, nil
}

func (c *Client) simple(req *Request) error {
	_, err := c.do(req)
	return err
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

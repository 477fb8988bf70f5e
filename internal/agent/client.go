package agent

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"time"
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

// Client talks to aclagent: one connection per request, so a restarted
// agent is simply reached again by the next request.
type Client struct {
	Socket  string
	Timeout time.Duration // per request; 0 means 60 s
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client { return &Client{Socket: path} }

// ReachError is an agent that cannot be reached.
type ReachError struct {
	Socket string
	Err    error
}

func (e *ReachError) Error() string {
	return fmt.Sprintf("%% Error: cannot reach aclagent at %s: %v", e.Socket, e.Err)
}

func (e *ReachError) Unwrap() error { return e.Err }

// RemoteError is an error the agent answered with. Msg starts with "%".
type RemoteError struct {
	Msg  string
	Line int // 1-based line of the transaction it is about; 0 when none
	Col  int // token index for the caret, when known
}

func (e *RemoteError) Error() string { return e.Msg }

// Do sends one request and returns the response. A response carrying an
// error is returned as *RemoteError (with the response, for its warnings).
func (c *Client) Do(req *Request) (*Response, error) {
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
		return nil, &ReachError{Socket: c.Socket, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.Error != "" {
		return &resp, &RemoteError{Msg: resp.Error, Line: resp.ErrLine, Col: resp.ErrCol}
	}
	return &resp, nil
}

// Txn applies one configuration transaction and returns the agent's warnings.
func (c *Client) Txn(ctx, lines []string) ([]string, error) {
	resp, err := c.Do(&Request{Op: OpTxn, Txn: &TxnRequest{Context: ctx, Lines: lines}})
	if resp == nil {
		return nil, err
	}
	return resp.Warnings, err
}

// Show returns the text of a show command.
func (c *Client) Show(req ShowRequest) (string, error) {
	resp, err := c.Do(&Request{Op: OpShow, Show: &req})
	if err != nil {
		return "", err
	}
	return resp.Text, nil
}

// ClearCounters clears the counters of one list (name != "") or of all.
func (c *Client) ClearCounters(family, name string) error {
	_, err := c.Do(&Request{Op: OpClearCounters, Clear: &ClearRequest{Family: family, Name: name}})
	return err
}

// WriteMemory persists the running config as the startup-config.
func (c *Client) WriteMemory() error {
	_, err := c.Do(&Request{Op: OpWriteMemory})
	return err
}

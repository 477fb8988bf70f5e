package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/slxsh/slxsh/internal/agent/wire"
	"github.com/slxsh/slxsh/internal/cli"
)

// ioTimeout bounds how long one connection may take to read its answer; a
// stuck client cannot hold a server goroutine forever. (The request's size
// and read deadline, and the bounds per peer, are in listen.go.)
var ioTimeout = 30 * time.Second

// Server answers requests on a unix socket for one Agent.
type Server struct {
	agent *Agent
	auth  *Authorizer
	log   *slog.Logger

	ln    *net.UnixListener
	wg    sync.WaitGroup
	guard guard // bounds per peer (listen.go)
}

// NewServer returns a server for a with the given authorisation.
func NewServer(a *Agent, auth *Authorizer) *Server {
	return &Server{agent: a, auth: auth, log: a.log}
}

// Listen creates the socket at path (its directory too). The socket is
// world-connectable (mode 0666): who may change what is decided per request
// from the peer's credentials, and everyone may look. A stale socket left
// by a dead agent is replaced; a live one is an error.
func (s *Server) Listen(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("another aclagent is listening on %s", path)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("%s exists and is not a socket", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove stale socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		ln.Close()
		return fmt.Errorf("chmod socket: %w", err)
	}
	s.ln = ln
	return nil
}

// Close stops listening and removes the socket (for a server that will
// not Serve).
func (s *Server) Close() error { return s.ln.Close() }

// Serve accepts connections until ctx ends, then waits for the requests in
// flight. The socket file is removed on the way out. Accept errors never
// end it (acceptLoop).
func (s *Server) Serve(ctx context.Context) error {
	go func() {
		<-ctx.Done()
		s.ln.Close()
	}()
	defer s.wg.Wait()
	return acceptLoop(ctx, s.ln.AcceptUnix, func(c *net.UnixConn) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(c)
		}()
	}, func(err error, delay time.Duration) {
		s.log.Warn("accept failed; retrying", "err", err, "retry_in", delay, "out_of_fds", isFileLimit(err))
	})
}

// handle answers one request on c, within the bounds of its peer
// (listen.go): a guest's connection over its bounds is refused, its
// request may not exceed maxGuestRequest and runs when one of the guest
// slots is free.
func (s *Server) handle(c *net.UnixConn) {
	defer c.Close()
	// The deadlines bound the I/O only: a request that waits for the
	// agent's lock behind a long apply must still get its answer.
	deadline := time.Now().Add(readTimeout)
	c.SetReadDeadline(deadline)
	peer, err := peerOf(c)
	if err != nil {
		s.log.Warn("rejecting connection", "err", err)
		return
	}
	admin := s.auth.MayChange(peer)
	release, refusal := s.guard.admit(peer, admin, time.Now())
	if refusal != "" {
		s.refuse(c, peer, refusal)
		return
	}
	defer release()
	req, err := s.guard.readRequest(c, admin, deadline)
	switch {
	case errors.Is(err, errTooLarge):
		s.refuse(c, peer, fmt.Sprintf("%% Error: bad request: larger than %d bytes", requestLimit(admin)))
		return
	case err != nil:
		s.reply(c, &wire.Response{Error: "% Error: bad request: " + err.Error()})
		return
	}
	if !admin {
		done, ok := s.guard.waitRunning(deadline)
		if !ok {
			s.refuse(c, peer, "% Error: the agent is busy; try again in a moment")
			return
		}
		defer done()
	}
	resp := s.dispatch(peer, req)
	s.reply(c, resp)
}

func (s *Server) reply(c net.Conn, resp *wire.Response) {
	resp.Version = wire.ProtocolVersion
	c.SetWriteDeadline(time.Now().Add(ioTimeout))
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		s.log.Debug("cannot send response", "err", err)
	}
}

// dispatch authorises and runs one request.
func (s *Server) dispatch(peer Peer, req *wire.Request) *wire.Response {
	if req.Version != wire.ProtocolVersion {
		return &wire.Response{Error: fmt.Sprintf("%% Error: protocol version %d not supported (aclagent speaks %d); use matching slxsh and aclagent", req.Version, wire.ProtocolVersion)}
	}
	log := s.log.With("op", req.Op, "uid", peer.UID, "pid", peer.PID)
	if wire.Mutates(req.Op) && !s.auth.MayChange(peer) {
		log.Warn("permission denied")
		return &wire.Response{Error: "% Error: permission denied"}
	}
	resp, err := s.run(req)
	if err != nil {
		log.Info("request failed", "err", err)
		return errorResponse(err)
	}
	if wire.Mutates(req.Op) && req.Op != wire.OpMayConfigure { // the audit log: changes only
		if req.Txn != nil {
			log = log.With("lines", auditLines(req.Txn))
		}
		log.Info("request done")
	}
	return resp
}

// run performs one request for an authorised peer.
func (s *Server) run(req *wire.Request) (*wire.Response, error) {
	a := s.agent
	f, err := parseFamily(req.Family)
	if err != nil {
		return nil, err
	}
	var src netip.Addr
	if req.Source != "" {
		if src, err = netip.ParseAddr(req.Source); err != nil {
			return nil, errorf("%% Error: bad source address %q", req.Source)
		}
	}
	switch req.Op {
	case wire.OpRunning:
		return &wire.Response{Text: a.RunningText()}, nil
	case wire.OpStartup:
		text, err := a.StartupText()
		return &wire.Response{Text: text}, err
	case wire.OpConfigure:
		if req.Txn == nil {
			return nil, userErr("% Error: bad request: no transaction")
		}
		warns, err := a.Configure(*req.Txn)
		return &wire.Response{Warnings: warns}, err
	case wire.OpSave:
		return &wire.Response{}, a.Save()
	case wire.OpRevert:
		return &wire.Response{}, a.Revert(req.Minutes)
	case wire.OpConfirm:
		return &wire.Response{}, a.Confirm()
	case wire.OpCounters:
		c, err := a.Counters(f, req.Name)
		return &wire.Response{Counters: c}, err
	case wire.OpSessions:
		k, err := a.Sessions(f, req.Name, req.Seq)
		return &wire.Response{Sessions: k}, err
	case wire.OpClearCounters:
		return &wire.Response{}, a.ClearCounters(f, req.Name)
	case wire.OpClearSessions:
		return &wire.Response{}, a.ClearSessions(f, req.Name, req.Seq, src)
	case wire.OpClearBlocked:
		return &wire.Response{}, a.ClearBlocked(f, req.Name, src)
	case wire.OpNftables:
		return &wire.Response{Text: a.NftablesText()}, nil
	case wire.OpVersion:
		return &wire.Response{Text: a.VersionText()}, nil
	case wire.OpLogging:
		return &wire.Response{Text: a.LoggingText()}, nil
	case wire.OpMayConfigure: // authorised by dispatch: the answer is yes
		return &wire.Response{}, nil
	}
	return nil, errorf("%% Error: bad request: unknown operation %q", req.Op)
}

// errorResponse carries an error over the socket: a line error as data
// (the shell rebuilds it to print FILE:LINE and the caret), anything else as
// its user-facing text.
func errorResponse(err error) *wire.Response {
	var le *cli.LineError
	if errors.As(err, &le) {
		return &wire.Response{Error: le.Error(), LineError: le}
	}
	return &wire.Response{Error: userError(err)}
}

// auditLines renders a transaction for the log: who changed what is the
// first question after an incident. Long transactions are cut.
func auditLines(t *cli.Txn) string {
	s := strings.Join(append(append([]string(nil), t.Context...), t.Lines...), "; ")
	if len(s) > 2000 {
		s = s[:2000] + fmt.Sprintf("... (%d lines)", len(t.Context)+len(t.Lines))
	}
	return s
}

package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
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
		s.reply(c, &wire.Response{Error: "% Error: bad request: " + err.Error()}, ioTimeout)
		return
	}
	writeTimeout := ioTimeout
	if !admin {
		done, ok := s.guard.waitRunning(peer.UID, deadline)
		if !ok {
			s.refuse(c, peer, "% Error: the agent is busy; try again in a moment")
			return
		}
		defer done()
		writeTimeout = guestWriteTimeout
	}
	resp := s.dispatch(peer, req)
	s.reply(c, resp, writeTimeout)
}

func (s *Server) reply(c net.Conn, resp *wire.Response, timeout time.Duration) {
	resp.Version = wire.ProtocolVersion
	c.SetWriteDeadline(time.Now().Add(timeout))
	w := bufio.NewWriterSize(c, 64<<10)
	err := writeResponse(w, resp)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		s.log.Debug("cannot send response", "err", err)
	}
}

// writeResponse writes resp as json.Encoder would, with a Value (a
// slice: streamed) encoded as it is written, element by element: a
// 25k-line `show access-list sessions` is megabytes of JSON that would
// otherwise be held whole, and copied as json.Marshal's buffer grows.
func writeResponse(w io.Writer, resp *wire.Response) error {
	if resp.Value == nil {
		b, err := encodeResponse(resp)
		if err == nil {
			_, err = b.WriteTo(w)
		}
		return err
	}
	head, err := responseHead(resp)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(head, `,"result":[`...)); err != nil {
		return err
	}
	v := reflect.ValueOf(resp.Value)
	for i := range v.Len() {
		b, err := json.Marshal(v.Index(i).Interface())
		if err != nil {
			return err
		}
		if i > 0 {
			if _, err := io.WriteString(w, ","); err != nil {
				return err
			}
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	_, err = io.WriteString(w, "]}\n")
	return err
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// encodeResponse is resp as json.Encoder writes it, but with the result
// (already JSON, from json.Marshal, which escapes as the encoder does)
// as it is: the encoder would copy it into its buffer again (another
// 6 MB for a 25k-line `show access-list sessions`).
func encodeResponse(resp *wire.Response) (net.Buffers, error) {
	head, err := responseHead(resp)
	if err != nil {
		return nil, err
	}
	if len(resp.Result) == 0 {
		return net.Buffers{head, []byte("}\n")}, nil
	}
	return net.Buffers{head, []byte(`,"result":`), resp.Result, []byte("}\n")}, nil
}

// responseHead is resp as json.Marshal encodes it without its result,
// and without the closing brace.
func responseHead(resp *wire.Response) ([]byte, error) {
	r := *resp
	r.Result, r.Value = nil, nil
	head, err := json.Marshal(&r)
	if err != nil {
		return nil, err
	}
	return head[:len(head)-1], nil
}

// dispatch authorises and runs one request.
func (s *Server) dispatch(peer Peer, req *wire.Request) *wire.Response {
	if req.Version != wire.ProtocolVersion {
		return &wire.Response{Error: fmt.Sprintf("%% Error: protocol version %d not supported (aclagent speaks %d); use matching slxsh and aclagent", req.Version, wire.ProtocolVersion)}
	}
	log := s.log.With("op", req.Op, "uid", peer.UID, "pid", peer.PID)
	mutates := cli.OpMutates(req.Op)
	if mutates && !s.auth.MayChange(peer) {
		log.Warn("permission denied")
		return &wire.Response{Error: "% Error: permission denied"}
	}
	arg, result, err := serverOps.RunValue(s.agent, req.Op, req.Args)
	if errors.Is(err, cli.ErrUnknownOp) {
		return &wire.Response{Error: fmt.Sprintf("%% Error: bad request: unknown operation %q", req.Op)}
	}
	if err != nil {
		log.Info("request failed", "err", err)
		return errorResponse(err)
	}
	if mutates && req.Op != cli.OpMayConfigure.Name { // the audit log: changes only
		if t, ok := arg.(cli.Txn); ok {
			log = log.With("lines", auditLines(&t))
		}
		log.Info("request done")
	}
	if streamed(result) {
		return &wire.Response{Value: result} // encoded as it is written (writeResponse)
	}
	b, err := json.Marshal(result)
	if err != nil {
		return errorResponse(err)
	}
	return &wire.Response{Result: b}
}

// streamed reports whether writeResponse writes v element by element: a
// slice (of anything but bytes) without a JSON encoding of its own.
func streamed(v any) bool {
	t := reflect.TypeOf(v)
	return t != nil && t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 &&
		!t.Implements(jsonMarshaler) && !reflect.PointerTo(t).Implements(jsonMarshaler) && !reflect.ValueOf(v).IsNil()
}

// serverOps implements every operation of internal/cli's op list on the
// agent (TestEveryOpServed checks that none is missing).
var serverOps = cli.Handlers[*Agent]{}

func init() {
	none := cli.NoArgs{}
	h := serverOps
	cli.Handle(h, cli.OpRunning, func(a *Agent, _ cli.NoArgs) (string, error) { return a.RunningText(), nil })
	cli.Handle(h, cli.OpHostname, func(a *Agent, _ cli.NoArgs) (string, error) { return a.Hostname(), nil })
	cli.Handle(h, cli.OpStartup, func(a *Agent, _ cli.NoArgs) (string, error) { return a.StartupText() })
	cli.Handle(h, cli.OpConfigure, func(a *Agent, t cli.Txn) ([]string, error) { return a.Configure(t) })
	cli.Handle(h, cli.OpSave, func(a *Agent, _ cli.NoArgs) (cli.NoArgs, error) { return none, a.Save() })
	cli.Handle(h, cli.OpRevert, func(a *Agent, minutes int) (cli.NoArgs, error) { return none, a.Revert(minutes) })
	cli.Handle(h, cli.OpConfirm, func(a *Agent, _ cli.NoArgs) (cli.NoArgs, error) { return none, a.Confirm() })
	cli.Handle(h, cli.OpCounters, func(a *Agent, r cli.ACLRef) ([]cli.EntryCounters, error) { return a.Counters(r.Family, r.Name, r.Dir) })
	cli.Handle(h, cli.OpSessions, func(a *Agent, r cli.ACLRef) ([]cli.SessionKey, error) { return a.Sessions(r.Family, r.Name, r.Seq) })
	cli.Handle(h, cli.OpClearCounters, func(a *Agent, r cli.ACLRef) (cli.NoArgs, error) { return none, a.ClearCounters(r.Family, r.Name) })
	cli.Handle(h, cli.OpClearSessions, func(a *Agent, r cli.ACLRef) (cli.NoArgs, error) {
		return none, a.ClearSessions(r.Family, r.Name, r.Seq, r.Source)
	})
	cli.Handle(h, cli.OpClearBlocked, func(a *Agent, r cli.ACLRef) (cli.NoArgs, error) {
		return none, a.ClearBlocked(r.Family, r.Name, r.Source)
	})
	cli.Handle(h, cli.OpNftables, func(a *Agent, _ cli.NoArgs) (string, error) { return a.NftablesText(), nil })
	cli.Handle(h, cli.OpTimeRanges, func(a *Agent, name string) (string, error) { return a.TimeRangesText(name) })
	cli.Handle(h, cli.OpBlocked, func(a *Agent, r cli.ACLRef) ([]cli.BlockedSource, error) { return a.Blocked(r.Family, r.Name) })
	cli.Handle(h, cli.OpVersion, func(a *Agent, _ cli.NoArgs) (string, error) { return a.VersionText(), nil })
	cli.Handle(h, cli.OpLogging, func(a *Agent, _ cli.NoArgs) (string, error) { return a.LoggingText(), nil })
	cli.Handle(h, cli.OpPacketTrace, (*Agent).PacketTrace)
	cli.Handle(h, cli.OpInterfaces, func(a *Agent, _ cli.NoArgs) ([]cli.InterfaceName, error) { return a.InterfaceNames(), nil })
	cli.Handle(h, cli.OpConfigNames, func(a *Agent, _ cli.NoArgs) (cli.Names, error) { return cli.NamesOf(a.current()), nil })
	// Authorised by dispatch (it is declared as a change): the answer is yes.
	cli.Handle(h, cli.OpMayConfigure, func(*Agent, cli.NoArgs) (cli.NoArgs, error) { return none, nil })
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
	const max = 2000
	var b strings.Builder
	n := 0
	for _, lines := range [][]string{t.Context, t.Lines} {
		for _, l := range lines {
			if n++; n > 1 {
				b.WriteString("; ")
			}
			b.WriteString(l)
			if b.Len() > max { // the rest is not read: a whole config is megabytes
				return b.String()[:max] + fmt.Sprintf("... (%d lines)", len(t.Context)+len(t.Lines))
			}
		}
	}
	return b.String()
}

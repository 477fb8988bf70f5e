package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/agent/wire"
	"github.com/slxsh/slxsh/internal/cli"
)

// serveTest runs a server for ta on a temp socket and returns a client.
func serveTest(t *testing.T, ta *testAgent) *wire.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "aclagent.sock")
	auth, _ := NewAuthorizer("")
	srv := NewServer(ta.Agent, auth)
	if err := srv.Listen(sock); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	c := wire.NewClient(sock)
	c.Warnings = &strings.Builder{}
	return c
}

func TestClientServerRoundTrip(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	for _, txn := range []cli.Txn{slxACL, slxBind} {
		if err := c.Configure(txn); err != nil {
			t.Fatal(err)
		}
	}
	run, err := c.Running()
	if err != nil {
		t.Fatal(err)
	}
	if acl.Format(run) != ta.RunningText() {
		t.Errorf("client's running-config differs:\n%s", acl.Format(run))
	}
	if text, _ := cli.Call(c, cli.OpNftables, cli.NoArgs{}); !strings.Contains(text, "table inet slxsh") {
		t.Errorf("show nftables:\n%s", text)
	}
	if text, _ := cli.Call(c, cli.OpVersion, cli.NoArgs{}); !strings.Contains(text, "Kernel: Linux") {
		t.Errorf("show version:\n%s", text)
	}
	if _, err := cli.Call(c, cli.OpSave, cli.NoArgs{}); err != nil {
		t.Fatal(err)
	}
	if text, _ := cli.Call(c, cli.OpStartup, cli.NoArgs{}); text != string(frameConfig(ta.RunningText())) {
		t.Errorf("startup-config after save:\n%s", text)
	}
	counters, err := cli.Call(c, cli.OpCounters, cli.ACLRef{Family: acl.IPv4, Name: "check"})
	if err != nil || len(counters) != 3 || counters[0].Seq != 10 { // seq 10, 20, the ACL's own
		t.Errorf("Counters = %v, %v", counters, err)
	}
	if _, err := cli.Call(c, cli.OpClearCounters, cli.ACLRef{Family: acl.IPv4}); err != nil {
		t.Error(err)
	}
	// Session tracking is not wired in this agent: a clear error.
	if _, err := cli.Call(c, cli.OpSessions, cli.ACLRef{Family: acl.IPv4, Name: "check"}); err == nil || !strings.HasPrefix(err.Error(), "% Error:") {
		t.Errorf("Sessions without a tracker: %v", err)
	}
}

func TestClientLineErrorCrossesSocket(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	err := c.Configure(cli.Txn{Lines: []string{"ip access-list extended x", "seq 10 permit tcp any any eq 22", "seq 20 permitt ip any any"}})
	var le *cli.LineError
	if !errors.As(err, &le) {
		t.Fatalf("error %T %v, want *cli.LineError", err, err)
	}
	if le.Line != 2 || le.Kind != cli.ErrInvalid || le.Col != 7 || le.Text != "seq 20 permitt ip any any" {
		t.Errorf("LineError = %+v", le)
	}
	if ta.Running().ACL(acl.IPv4, "x") != nil {
		t.Error("failed block applied in part")
	}
	err = c.Configure(cli.Txn{Lines: []string{"interface management 0", "ip access-group nosuch in"}})
	if !errors.As(err, &le) || le.Kind != cli.ErrSemantic || !strings.Contains(err.Error(), `"nosuch"`) {
		t.Errorf("semantic error = %v", err)
	}
}

func TestClientWarnings(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	c.Configure(slxACL)
	if err := c.Configure(cli.Txn{Lines: []string{"interface slxnope1", "ip access-group check in"}}); err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings.(*strings.Builder).String(); !strings.HasPrefix(w, "% Warning: interface slxnope1 does not exist") {
		t.Errorf("warnings written: %q", w)
	}
}

func TestPermissionDenied(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL)
	before := ta.RunningText()
	srv := NewServer(ta.Agent, &Authorizer{gid: 4242, hasGroup: true})
	user := Peer{UID: 1000, GID: 1000, Groups: []uint32{100}}
	check := cli.ACLRef{Family: acl.IPv4, Name: "check"}
	for _, req := range []*wire.Request{
		request(t, cli.OpConfigure, cli.Txn{Lines: []string{"no ip access-list extended check"}}),
		request(t, cli.OpSave, cli.NoArgs{}), request(t, cli.OpClearCounters, cli.ACLRef{}), request(t, cli.OpRevert, 1),
		request(t, cli.OpConfirm, cli.NoArgs{}), request(t, cli.OpClearSessions, check), request(t, cli.OpClearBlocked, check),
		{Op: "bogus"}, request(t, cli.OpMayConfigure, cli.NoArgs{}),
	} {
		req.Version = wire.ProtocolVersion
		if resp := srv.dispatch(user, req); resp.Error != "% Error: permission denied" {
			t.Errorf("%s by a non-admin: %+v", req.Op, resp)
		}
	}
	if ta.RunningText() != before {
		t.Error("a non-admin changed the config")
	}
	// Looking is allowed.
	resp := srv.dispatch(user, request(t, cli.OpRunning, cli.NoArgs{}))
	if resp.Error != "" || string(resp.Result) != mustJSON(t, before) {
		t.Errorf("show running-config by a non-admin: %+v", resp)
	}
	// A member of the admin group may change.
	admin := Peer{UID: 1000, GID: 1000, Groups: []uint32{4242}}
	resp = srv.dispatch(admin, request(t, cli.OpConfigure, cli.Txn{Lines: []string{"hostname h2"}}))
	if resp.Error != "" || !strings.Contains(ta.RunningText(), "host-name h2") {
		t.Errorf("admin group member: %+v", resp)
	}
	if resp := srv.dispatch(admin, request(t, cli.OpMayConfigure, cli.NoArgs{})); resp.Error != "" {
		t.Errorf("may-configure by an admin group member: %+v", resp)
	}
}

func TestProtocolVersionMismatch(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	conn, err := net.Dial("unix", c.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	json.NewEncoder(conn).Encode(&wire.Request{Version: 99, Op: cli.OpRunning.Name})
	var resp wire.Response
	if err := json.NewDecoder(conn).Decode(&resp); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Error, "% Error: protocol version 99") {
		t.Errorf("response = %+v", resp)
	}
}

func TestUnreachableAgent(t *testing.T) {
	c := wire.NewClient(filepath.Join(t.TempDir(), "none.sock"))
	_, err := c.Running()
	var re *wire.ReachError
	if !errors.As(err, &re) || !strings.HasPrefix(err.Error(), "% Error: cannot reach aclagent at ") {
		t.Errorf("error = %v", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	srv := NewServer(ta.Agent, &Authorizer{})
	if err := srv.Listen(c.Socket); err == nil || !strings.Contains(err.Error(), "another aclagent") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
}

func TestClientRunningParsesOnlyChanges(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	c.Configure(slxACL)
	a, err := c.Running()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Running()
	if a != b {
		t.Error("unchanged running-config parsed again")
	}
	ta.mustConfigure(t, cli.Txn{Lines: []string{"hostname other"}}) // another shell
	b, _ = c.Running()
	if a == b || b.Hostname != "other" {
		t.Errorf("changed running-config not seen: hostname %q", b.Hostname)
	}
}

func TestListenKeepsNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "precious")
	os.WriteFile(path, []byte("data"), 0o644)
	srv := NewServer(newTestAgent(t).Agent, &Authorizer{})
	if err := srv.Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "data" {
		t.Error("regular file removed")
	}
}

func TestBadRequests(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	for _, raw := range []string{
		"not json\n",
		`{"version":1,"op":"running","args":{}}` + "\n",
		`{"version":2,"op":"configure"}` + "\n",
		`{"version":2,"op":"counters","args":{"family":"ipx","name":"check"}}` + "\n",
		`{"version":2,"op":"clear-sessions","args":{"family":"ip","name":"check","source":"not-an-ip"}}` + "\n",
		`{"version":2,"op":"launch-missiles","args":{}}` + "\n",
	} {
		conn, err := net.Dial("unix", c.Socket)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, raw)
		var resp wire.Response
		err = json.NewDecoder(conn).Decode(&resp)
		conn.Close()
		if err != nil || !strings.HasPrefix(resp.Error, "% Error: ") {
			t.Errorf("%q: response %+v, %v", raw, resp, err)
		}
	}
	if _, err := cli.Call(c, cli.OpVersion, cli.NoArgs{}); err != nil {
		t.Errorf("agent does not answer after bad requests: %v", err)
	}
}

// TestRequestWaitsForTheLock: the I/O deadline does not cut off a request
// that waits for the agent's lock longer than the deadline.
func TestRequestWaitsForTheLock(t *testing.T) {
	old := ioTimeout
	ioTimeout = 100 * time.Millisecond
	t.Cleanup(func() { ioTimeout = old })
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	ta.mu.Lock() // a long apply in another shell
	go func() {
		time.Sleep(400 * time.Millisecond)
		ta.mu.Unlock()
	}()
	if err := c.Configure(slxACL); err != nil {
		t.Fatalf("request queued behind the lock: %v", err)
	}
	if ta.Running().ACL(acl.IPv4, "check") == nil {
		t.Error("change not applied")
	}
}

// request builds the wire request for op with argument a.
func request[A, R any](t *testing.T, op cli.Op[A, R], a A) *wire.Request {
	t.Helper()
	return &wire.Request{Version: wire.ProtocolVersion, Op: op.Name, Args: json.RawMessage(mustJSON(t, a))}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestEveryOpServed: the agent implements every operation the shell can
// call, and dispatch answers none of them with "unknown operation".
func TestEveryOpServed(t *testing.T) {
	for _, name := range cli.OpNames() {
		if _, ok := serverOps[name]; !ok {
			t.Errorf("operation %q is declared in internal/cli but aclagent does not serve it", name)
		}
	}
	if len(serverOps) != len(cli.OpNames()) {
		t.Errorf("aclagent serves %d operations, internal/cli declares %d", len(serverOps), len(cli.OpNames()))
	}
}

// TestShowOpsNeedNoAdmin: a user who may not change the configuration may
// call every operation that is not declared as a change.
func TestShowOpsNeedNoAdmin(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL)
	srv := NewServer(ta.Agent, &Authorizer{gid: 4242, hasGroup: true})
	user := Peer{UID: 1000, GID: 1000}
	for _, req := range []*wire.Request{
		request(t, cli.OpRunning, cli.NoArgs{}), request(t, cli.OpStartup, cli.NoArgs{}),
		request(t, cli.OpCounters, cli.ACLRef{Family: acl.IPv4, Name: "check"}), request(t, cli.OpNftables, cli.NoArgs{}),
		request(t, cli.OpVersion, cli.NoArgs{}), request(t, cli.OpInterfaces, cli.NoArgs{}),
	} {
		if resp := srv.dispatch(user, req); resp.Error != "" {
			t.Errorf("%s by a non-admin: %s", req.Op, resp.Error)
		}
	}
}

// TestInterfaceNames: the agent tells the shell what management 0 and the
// configured interfaces mean in Linux (show access-list interface eth0,
// show interface).
func TestInterfaceNames(t *testing.T) {
	ta := newTestAgent(t)
	ta.mustConfigure(t, slxACL, cli.Txn{Lines: []string{"interface management 0", "interface slxtest9"}})
	c := serveTest(t, ta)
	names, err := cli.Call(c, cli.OpInterfaces, cli.NoArgs{})
	if err != nil {
		t.Fatal(err)
	}
	// management 0 is listed once, configured or not.
	want := []cli.InterfaceName{{Kind: acl.IfManagement, Name: "0", Linux: "lo"}, {Kind: acl.IfLinux, Name: "slxtest9", Linux: "slxtest9"}}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("interfaces = %+v, want %+v", names, want)
	}
}

// TestEncodeResponseIsEncoder: the reply written without copying the
// result is byte for byte what json.Encoder writes, with and without a
// result, an error or a line error.
func TestEncodeResponseIsEncoder(t *testing.T) {
	for _, r := range []wire.Response{
		{Version: wire.ProtocolVersion},
		{Version: wire.ProtocolVersion, Result: json.RawMessage(`[{"Seq":10,"Key":"10.0.0.1","Sessions":4}]`)},
		{Version: wire.ProtocolVersion, Result: marshal(t, "a <b> & c")}, // results come from json.Marshal
		{Version: wire.ProtocolVersion, Error: "% Error: x", LineError: &cli.LineError{Line: 3, Col: 2, Text: "seq 10 <x>"}},
	} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&r); err != nil {
			t.Fatal(err)
		}
		b, err := encodeResponse(&r)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		b.WriteTo(&got)
		if got.String() != want.String() {
			t.Errorf("encodeResponse:\n got %s\nwant %s", got.String(), want.String())
		}
	}
}

// TestWriteResponseStreamsAsEncoder: a slice result written element by
// element is byte for byte what json.Encoder writes of the response with
// the result marshalled whole; other results are not streamed.
func TestWriteResponseStreamsAsEncoder(t *testing.T) {
	keys := []cli.SessionKey{{Seq: 10, Key: "10.0.0.1", Sessions: 4, Limit: 3, AtLimit: true}, {Seq: 20, Per: "per-prefix 24", Key: "<10.0.0.0/24> & x", Sessions: 1}}
	for i := range 300 {
		keys = append(keys, cli.SessionKey{Seq: i, Key: fmt.Sprintf("10.1.%d.%d", i/256, i%256), Sessions: i % 7})
	}
	for _, v := range []any{keys, keys[:1], []cli.SessionKey{}, []string{"a", "<b>"}, [][]int{{1}, nil}} {
		if !streamed(v) {
			t.Fatalf("%T not streamed", v)
		}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(&wire.Response{Version: wire.ProtocolVersion, Result: marshal(t, v)}); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := writeResponse(&got, &wire.Response{Version: wire.ProtocolVersion, Value: v}); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("writeResponse of %T:\n got %.300s\nwant %.300s", v, got.String(), want.String())
		}
	}
	for _, v := range []any{nil, []cli.SessionKey(nil), []byte("x"), "text", cli.NoArgs{}, json.RawMessage(`[1]`)} {
		if streamed(v) {
			t.Errorf("%T %v streamed", v, v)
		}
	}
}

func marshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientToldOfATooLargeRequest: a request over the agent's bound is
// refused before it is all sent; the client reports the agent's reason,
// not a broken pipe (which reads as an agent that went away).
func TestClientToldOfATooLargeRequest(t *testing.T) {
	ta := newTestAgent(t)
	c := serveTest(t, ta)
	lines := make([]string, 0, maxRequest/100)
	for i := 0; len(lines) < cap(lines); i++ {
		lines = append(lines, "remark "+strings.Repeat("x", 120))
	}
	err := c.Configure(cli.Txn{Lines: lines})
	var remote wire.RemoteError
	if !errors.As(err, &remote) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Configure of %d MB: %v (%T), want the agent's refusal", len(lines)*128>>20, err, err)
	}
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// bin holds the aclagent and slxsh binaries built once for the tests that
// run them (with -race when the tests run with -race).
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "aclagent-test-")
	if err != nil {
		panic(err)
	}
	// Readable by the unprivileged users of the permission tests.
	os.Chmod(dir, 0o755)
	bin = dir
	args := []string{"build", "-o", dir + "/"}
	if raceBuild {
		args = append(args, "-race")
	}
	args = append(args, "github.com/slxsh/slxsh/cmd/aclagent", "github.com/slxsh/slxsh/cmd/slxsh")
	build := exec.Command("go", args...)
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("build aclagent and slxsh: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a bytes.Buffer safe for a writing process and a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// agentProc is aclagent running inside a test namespace, with its socket,
// startup-config and state in dir.
type agentProc struct {
	t       testing.TB
	ns      *netns.NS
	dir     string
	sock    string
	startup string
	args    []string
	env     []string // added to the test's environment
	cmd     *exec.Cmd
	log     *syncBuffer
	done    chan error
}

// newAgent prepares (but does not start) an agent in ns whose
// `interface management 0` is mgmt.
func newAgent(t testing.TB, ns *netns.NS, mgmt string, extra ...string) *agentProc {
	t.Helper()
	dir, err := os.MkdirTemp("", "aclagent-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &agentProc{t: t, ns: ns, dir: dir, sock: filepath.Join(dir, "aclagent.sock"), startup: filepath.Join(dir, "startup-config")}
	p.args = append([]string{"--socket", p.sock, "--config", p.startup, "--mgmt-interface", mgmt, "--admin-group", "root"}, extra...)
	return p
}

// start runs the agent and waits until it answers on its socket.
func (p *agentProc) start() {
	t := p.t
	t.Helper()
	p.log = &syncBuffer{}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", p.ns.Name, filepath.Join(bin, "aclagent")}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if p.env != nil {
		p.cmd.Env = append(os.Environ(), p.env...)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan error, 1)
	cmd, done := p.cmd, p.done
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { p.stop() })
	for i := 0; i < 200; i++ { // at most 10 s
		if c, err := net.Dial("unix", p.sock); err == nil {
			c.Close()
			if strings.Contains(p.log.String(), "msg=ready") {
				return
			}
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("aclagent exited: %v\n%s", err, p.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("aclagent did not become ready:\n%s", p.log)
}

// stop sends SIGTERM and waits; it is a no-op when the agent is not running.
func (p *agentProc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("aclagent exit after SIGTERM: %v\n%s", err, p.log)
		}
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("aclagent ignored SIGTERM:\n%s", p.log)
	}
	p.cmd = nil
}

// kill9 kills the agent with SIGKILL.
func (p *agentProc) kill9() {
	p.cmd.Process.Kill()
	<-p.done
	p.cmd = nil
}

// shellResult is what a slxsh run printed and how it exited.
type shellResult struct {
	out, err string
	code     int
}

func (r shellResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.err)
}

// shell runs slxsh against the agent with stdin and args.
func (p *agentProc) shell(stdin string, args ...string) shellResult {
	return p.shellAs(nil, stdin, args...)
}

// shellAs runs slxsh with the given credentials (nil: the test's).
func (p *agentProc) shellAs(cred *syscall.Credential, stdin string, args ...string) shellResult {
	p.t.Helper()
	cmd := exec.Command(filepath.Join(bin, "slxsh"), append([]string{"--socket", p.sock}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "HOME="+p.dir)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := shellResult{out: out.String(), err: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		p.t.Fatal(err)
	}
	return r
}

// mustShell runs slxsh and fails the test unless it succeeds.
func (p *agentProc) mustShell(stdin string, args ...string) string {
	p.t.Helper()
	r := p.shell(stdin, args...)
	if r.code != 0 {
		p.t.Fatalf("slxsh %q failed: %v", args, r)
	}
	return r.out
}

// running is the agent's running-config as slxsh shows it.
func (p *agentProc) running() string {
	p.t.Helper()
	return p.mustShell("", "-c", "show running-config")
}

// nftTable lists our table inside the namespace ("" when it does not exist).
func nftTable(ns *netns.NS) string {
	out, err := ns.Exec("nft", "list", "table", "inet", "slxsh")
	if err != nil {
		return ""
	}
	return expiresRE.ReplaceAllString(out, "")
}

// expiresRE is the time an element with a timeout has left (the grace
// set's), which differs between two listings of the same table.
var expiresRE = regexp.MustCompile(` expires [0-9dhms]+`)

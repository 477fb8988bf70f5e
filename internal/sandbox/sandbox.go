// Package sandbox is `slxsh --sandbox`: a self-contained demo on one
// machine. It builds two network namespaces joined by a veth pair — a
// server (slx-server, 10.0.0.2, with a TCP service on port 22) and a client
// (slx-client, 10.0.0.1) — runs aclagent inside the server namespace with
// its own socket and startup-config in a temp directory, and hands the
// socket to the shell. The host's own interfaces, routes and nftables
// ruleset are never touched: every link, address and rule lives inside the
// two namespaces, which are deleted on exit.
//
// It uses the ip command and setns(2) only; like the rest of slxsh it does
// not speak netlink itself.
package sandbox

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Names and addresses of the sandbox topology.
const (
	ServerNS   = "slx-server"
	ClientNS   = "slx-client"
	ServerAddr = "10.0.0.2"
	ClientAddr = "10.0.0.1"
	Port       = 22
	// ServerIf is the server's interface; the agent runs with
	// --mgmt-interface ServerIf, so `interface management 0` means it.
	ServerIf = "eth0"
)

// pidFile marks a running sandbox, so that a second one refuses to start
// and a crashed one is cleaned up by the next.
const pidFile = "/run/slxsh-sandbox.pid"

// StartupConfig is the configuration the sandbox agent starts with: the SLX
// example with the sandbox's addresses, plus a permit for everything else.
// It is in the running-config's own form, so that show startup-config and
// show running-config compare equal until something changes.
const StartupConfig = `switch-attributes host-name sandbox
!
ip access-list extended check
 seq 10 permit tcp host ` + ClientAddr + ` host ` + ServerAddr + ` eq 22 connlimit 3
 seq 20 permit ip any any
!
interface management 0
 ip access-group check in
!
`

// Sandbox is a running demo.
type Sandbox struct {
	Dir    string // temp directory: socket, startup-config, agent log
	Socket string // the agent's socket, for the shell

	agent    *exec.Cmd
	agentErr chan error
	reaper   *exec.Cmd
	service  net.Listener
	sigs     chan os.Signal
	once     sync.Once
}

// Options configure Start.
type Options struct {
	// Agent is the aclagent binary; "" looks next to the running
	// executable, then in PATH.
	Agent string
}

// Start builds the sandbox and starts the agent. On error everything built
// so far is removed. The caller must Close it; SIGTERM, SIGHUP (a closed
// terminal) and SIGINT also clean up, then exit.
func Start(w io.Writer, opts Options) (_ *Sandbox, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("% Error: the sandbox needs root for its network namespaces: sudo slxsh --sandbox")
	}
	agentBin, err := findAgent(opts.Agent)
	if err != nil {
		return nil, err
	}
	if err := claim(); err != nil {
		return nil, err
	}
	s := &Sandbox{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	dir, err := os.MkdirTemp("", "slxsh-sandbox-")
	if err != nil {
		return nil, fmt.Errorf("%% Error: create temp dir: %w", err)
	}
	s.Dir, s.Socket = dir, filepath.Join(dir, "aclagent.sock")
	if err := s.startReaper(); err != nil {
		return nil, fmt.Errorf("%% Error: start the sandbox's reaper: %w", err)
	}
	fmt.Fprintf(w, "Building namespaces %s (%s) and %s (%s) ...\n", ServerNS, ServerAddr, ClientNS, ClientAddr)
	if err := buildTopology(); err != nil {
		return nil, err
	}
	if err := s.startService(); err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "Starting aclagent in %s (log: %s) ...\n", ServerNS, filepath.Join(dir, "aclagent.log"))
	if err := s.startAgent(agentBin); err != nil {
		return nil, err
	}
	s.sigs = make(chan os.Signal, 1)
	signal.Notify(s.sigs, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
	go func() {
		if _, ok := <-s.sigs; ok {
			s.Close()
			os.Exit(1)
		}
	}()
	return s, nil
}

// Instructions is what the user reads before the shell's first prompt;
// slxsh is how to run this slxsh from another terminal.
func Instructions(slxsh string) string {
	return fmt.Sprintf(`
slxsh sandbox: a server namespace %[1]s (%[2]s, a TCP service on port %[5]d,
aclagent applying the config to its interface %[6]s = "management 0") and a
client namespace %[3]s (%[4]s). The host's own firewall is not touched.

The agent started with this config (see "show running-config"):
  ip access-list extended check
   seq 10 permit tcp host %[4]s host %[2]s eq 22 connlimit 3
   seq 20 permit ip any any
  interface management 0
   ip access-group check in

Try it. In a second terminal, open 5 connections from the client
(the 4th and 5th are refused; Enter closes them):
  sudo %[7]s --sandbox-connect 5
or get a shell in the client namespace (e.g. for: nc %[2]s 22):
  sudo ip netns exec %[3]s bash
Then here:
  show access-list ip check
  show access-list sessions ip check
  show nftables
  configure terminal
  ip access-list extended check
  no seq 10
  seq 10 permit tcp host %[4]s host %[2]s eq 22 connlimit 5
  end
"exit" leaves the sandbox and removes everything it built.

`, ServerNS, ServerAddr, ClientNS, ClientAddr, Port, ServerIf, slxsh)
}

// Close stops the agent and the service and removes the namespaces, the
// temp directory and the pid file. It is safe to call more than once.
func (s *Sandbox) Close() error {
	s.once.Do(func() {
		if s.sigs != nil {
			signal.Stop(s.sigs)
			close(s.sigs)
		}
		if s.agent != nil && s.agent.Process != nil {
			s.agent.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.agentErr:
			case <-time.After(5 * time.Second):
				s.agent.Process.Kill()
				<-s.agentErr
			}
		}
		if s.service != nil {
			s.service.Close()
		}
		teardown()
		if s.Dir != "" {
			os.RemoveAll(s.Dir)
		}
		os.Remove(pidFile)
		s.stopReaper()
	})
	return nil
}

// findAgent locates the aclagent binary.
func findAgent(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "aclagent")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	if p, err := exec.LookPath("aclagent"); err == nil {
		return p, nil
	}
	return "", errors.New("% Error: aclagent not found next to slxsh or in PATH; build both with: go build -o bin/ ./cmd/... (scripts/demo builds them and starts the sandbox)")
}

// claim takes the pid file. A live sandbox is an error; a dead one's
// namespaces are removed first.
func claim() error {
	if data, err := os.ReadFile(pidFile); err == nil {
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if pid > 0 && pid != os.Getpid() && sandboxAlive(pid) {
			return fmt.Errorf("%% Error: a sandbox is already running (pid %d)", pid)
		}
		teardown()
	} else if nsExists(ServerNS) || nsExists(ClientNS) {
		return fmt.Errorf("%% Error: namespace %s or %s exists but is not the sandbox's; remove them with: ip netns del NAME", ServerNS, ClientNS)
	}
	return os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// sandboxAlive reports whether pid is a live slxsh (not a zombie, not some
// other process that got the pid of a dead sandbox).
func sandboxAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name: "pid (comm) S ...".
	if i := strings.LastIndexByte(string(stat), ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' {
		return false
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.Contains(string(cmdline), "slxsh")
}

func nsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

// buildTopology creates both namespaces and the veth pair between them.
// The pair is created inside the client namespace (`ip -n`), so it never
// exists on the host, not even for a moment.
func buildTopology() error {
	steps := [][]string{
		{"netns", "add", ServerNS},
		{"netns", "add", ClientNS},
		{"-n", ClientNS, "link", "add", "eth0", "type", "veth", "peer", "name", ServerIf, "netns", ServerNS},
		{"-n", ClientNS, "addr", "add", ClientAddr + "/24", "dev", "eth0"},
		{"-n", ServerNS, "addr", "add", ServerAddr + "/24", "dev", ServerIf},
		{"-n", ClientNS, "link", "set", "lo", "up"},
		{"-n", ServerNS, "link", "set", "lo", "up"},
		{"-n", ClientNS, "link", "set", "eth0", "up"},
		{"-n", ServerNS, "link", "set", ServerIf, "up"},
		// The server's default route makes eth0 the agent's default for
		// management 0 as well.
		{"-n", ServerNS, "route", "add", "default", "via", ClientAddr},
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%% Error: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// teardown deletes the namespaces (their veth ends go with them).
func teardown() {
	for _, ns := range []string{ClientNS, ServerNS} {
		if nsExists(ns) {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
}

// startAgent runs aclagent inside the server namespace and waits for its
// socket.
func (s *Sandbox) startAgent(bin string) error {
	cfg := filepath.Join(s.Dir, "startup-config")
	if err := os.WriteFile(cfg, []byte(StartupConfig), 0o644); err != nil {
		return fmt.Errorf("%% Error: write startup-config: %w", err)
	}
	logf, err := os.Create(filepath.Join(s.Dir, "aclagent.log"))
	if err != nil {
		return fmt.Errorf("%% Error: create agent log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", ServerNS, bin,
		"--socket", s.Socket, "--config", cfg, "--mgmt-interface", ServerIf, "--table", "slxsh")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "SLXSH_SOCKET="+s.Socket)
	// If slxsh dies without Close (SIGKILL, or a signal handler that exits
	// at once), the agent goes too; the next sandbox removes the namespaces.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%% Error: start aclagent: %w", err)
	}
	s.agent, s.agentErr = cmd, make(chan error, 1)
	go func() { s.agentErr <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", s.Socket); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-s.agentErr:
			s.agentErr <- err // for Close
			log, _ := os.ReadFile(logf.Name())
			return fmt.Errorf("%% Error: aclagent exited: %v\n%s", err, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return errors.New("% Error: aclagent did not open its socket within 10 s; see " + logf.Name())
}

// startService listens on ServerAddr:Port inside the server namespace: it
// greets each connection, echoes what it receives, and holds it open until
// the client closes it.
func (s *Sandbox) startService() error {
	var ln net.Listener
	err := InNamespace(ServerNS, func() error {
		var err error
		ln, err = net.Listen("tcp", net.JoinHostPort(ServerAddr, strconv.Itoa(Port)))
		return err
	})
	if err != nil {
		return fmt.Errorf("%% Error: start the sandbox service: %w", err)
	}
	s.service = ln
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "SSH-2.0-slxsh-sandbox (a demo service: it echoes what you type)\r\n")
				io.Copy(c, c)
			}()
		}
	}()
	return nil
}

// InNamespace runs fn on a thread switched into the named network
// namespace. Sockets fn creates stay in that namespace. The thread is
// switched back; if that fails it is left locked, so that Go retires it
// instead of reusing it in the wrong namespace.
func InNamespace(name string, fn func() error) error {
	target, err := os.Open(filepath.Join("/run/netns", name))
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err)) // thread stays locked and dies
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

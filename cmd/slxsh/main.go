// Command slxsh is the switch-style shell for configuring connection-limiting
// ACLs: interactive when stdin is a terminal, scripted otherwise (or with -f
// or -c). See SPEC §3 and §6.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/agent/wire"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/sandbox"
	"github.com/slxsh/slxsh/internal/term"
)

// defaultSocket is where aclagent listens unless --socket or SLXSH_SOCKET
// say otherwise.
const defaultSocket = wire.DefaultSocket

const usage = `usage: slxsh [--socket PATH]                  interactive when stdin is a terminal
       slxsh [--socket PATH] -f FILE          run the commands of FILE (- for stdin)
       slxsh [--socket PATH] -c 'CMD; CMD'    run the commands given
       slxsh --sandbox                        self-contained demo (namespaces + agent)
       slxsh --sandbox-connect N              open N connections from the sandbox's client
       slxsh --offline [-f FILE | -c CMDS]    no agent: the configuration lives in this shell only

When stdin is not a terminal, slxsh runs the commands read from it. As an
sshd ForceCommand, the command the client asked for (SSH_ORIGINAL_COMMAND,
e.g. ssh host 'show version') runs as -c would, unless it is slxsh itself.
In scripts each configure terminal ... end block is one transaction (exec
commands inside it, such as do write memory, run once it is applied; those
that change something, such as clear, are refused there), and the first
error is printed as FILE:LINE: % ... and ends slxsh with status 1.

Flags:
  --socket PATH   aclagent's socket (default $SLXSH_SOCKET, else ` + defaultSocket + `)
  -f FILE         run a script
  -c COMMANDS     run commands separated by ';'
  --sandbox       start the self-contained demo
  --sandbox-connect N
                  open N connections from the sandbox's client to its port 22
  --offline       do not use aclagent; keep the configuration in memory
  -h, --help      show this help
`

// options are the parsed command line.
type options struct {
	socket  string
	file    string
	command string
	hasCmd  bool
	sandbox bool
	connect int  // --sandbox-connect N
	offline bool // --offline: memory backend, no agent
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == sandbox.ReapArg {
		os.Exit(sandbox.Reap(os.Args[2])) // the sandbox's cleanup process
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is slxsh with its arguments and standard files; it returns the exit
// status.
func run(args []string, stdin, stdout, stderr *os.File) int {
	opts, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%% %v\n%s", err, usage)
		return 2
	}
	if !opts.hasCmd && opts.file == "" && !opts.sandbox && opts.connect == 0 {
		cmd, ok, err := forcedCommand(os.Getenv("SSH_ORIGINAL_COMMAND"))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if ok {
			opts.command, opts.hasCmd = cmd, true
		}
	}
	if opts.connect > 0 {
		return sandboxConnect(opts.connect, stdin, stdout, stderr)
	}
	if opts.sandbox {
		sb, err := sandbox.Start(stderr, sandbox.Options{})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		defer sb.Close()
		opts.socket = sb.Socket
		if term.IsTerminal(int(stdin.Fd())) && !opts.hasCmd && opts.file == "" {
			exe, err := os.Executable()
			if err != nil {
				exe = "slxsh"
			}
			fmt.Fprint(stdout, sandbox.Instructions(exe))
		}
	}
	backend, err := openBackend(opts)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sess := cli.NewSession(backend, hostname())
	if opts.sandbox {
		sess.SetHost(serverHost{})
	}
	switch {
	case opts.hasCmd:
		return script(sess, strings.NewReader(splitCommands(opts.command)), "<command>", stdout, stderr)
	case opts.file == "-":
		return script(sess, stdin, "<stdin>", stdout, stderr)
	case opts.file != "":
		f, err := os.Open(opts.file)
		if err != nil {
			fmt.Fprintf(stderr, "%% Error: %v\n", err)
			return 1
		}
		defer f.Close()
		return script(sess, f, opts.file, stdout, stderr)
	case !term.IsTerminal(int(stdin.Fd())):
		return script(sess, stdin, "<stdin>", stdout, stderr)
	}
	return interactive(sess, stdin, stdout)
}

// parseFlags parses the command line of SPEC §6.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("slxsh", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.socket, "socket", "", "aclagent's socket")
	fs.StringVar(&o.file, "f", "", "script file")
	fs.Func("c", "commands", func(s string) error {
		o.command, o.hasCmd = s, true
		return nil
	})
	fs.BoolVar(&o.sandbox, "sandbox", false, "self-contained demo")
	fs.IntVar(&o.connect, "sandbox-connect", 0, "connections to open from the sandbox client")
	fs.BoolVar(&o.offline, "offline", false, "keep the configuration in memory")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.hasCmd && o.file != "":
		return o, errors.New("-c and -f cannot be combined")
	}
	return o, nil
}

// socketPath is the agent socket: the flag, else SLXSH_SOCKET, else the
// default.
func socketPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if env := os.Getenv("SLXSH_SOCKET"); env != "" {
		return env
	}
	return defaultSocket
}

// openBackend chooses what the shell talks to: aclagent at its socket, or
// with --offline a configuration in this process's memory. Without an agent
// the shell refuses to start instead of silently configuring nothing.
func openBackend(opts options) (cli.Backend, error) {
	if opts.offline {
		return cli.NewMemoryBackend(acl.New()), nil
	}
	c := wire.NewClient(socketPath(opts.socket))
	if err := c.Ping(); err != nil {
		var reach *wire.ReachError
		if errors.As(err, &reach) {
			return nil, fmt.Errorf("%w (start aclagent, or use --offline)", err)
		}
		return nil, err // the agent runs and said why (busy, too many connections)
	}
	return c, nil
}

// sandboxConnect is `slxsh --sandbox-connect N`: N connections from the
// sandbox's client, held open until Enter (or the end of stdin).
func sandboxConnect(n int, stdin io.Reader, stdout, stderr io.Writer) int {
	hold := func() { stdin.Read(make([]byte, 1)) }
	if err := sandbox.Connect(stdout, n, 0, hold); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// serverHost is the sandbox's host for show interface and the like: the
// interfaces of the server namespace, where the agent applies the config,
// not those of the host the shell runs on.
type serverHost struct{ cli.LinuxHost }

func (h serverHost) Interfaces() ([]cli.HostInterface, error) {
	var ifs []cli.HostInterface
	err := sandbox.InNamespace(sandbox.ServerNS, func() (err error) {
		ifs, err = h.LinuxHost.Interfaces()
		return err
	})
	return ifs, err
}

// hostname is the Linux host name up to its first dot, the default HOST of
// the prompt.
func hostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "slxsh"
	}
	h, _, _ = strings.Cut(h, ".")
	return h
}

// forcedCommand reads SSH_ORIGINAL_COMMAND, which sshd sets when slxsh is
// its ForceCommand and the client named a command (`ssh host 'show
// version'`): that command runs as -c would. A command that names the
// shell itself (`ssh host slxsh < cfg`, the form that works without
// ForceCommand too) means the shell as it is: it reads stdin. The shell
// named with arguments is an error: the ForceCommand's own arguments
// decide (agent, mode), and a -c or -f ignored would print nothing and
// succeed.
func forcedCommand(env string) (string, bool, error) {
	cmd := strings.TrimSpace(env)
	if cmd == "" {
		return "", false, nil
	}
	first, rest, _ := strings.Cut(cmd, " ")
	if first == "slxsh" || strings.HasSuffix(first, "/slxsh") {
		if rest = strings.TrimSpace(rest); rest != "" {
			return "", false, fmt.Errorf("%% Error: this login runs slxsh itself and takes no arguments to it (%s): send the commands (ssh HOST 'show version; show clock') or slxsh alone with a script on stdin", rest)
		}
		return "", false, nil
	}
	return cmd, true, nil
}

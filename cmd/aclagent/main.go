// Command aclagent is the slxsh daemon: it owns the running configuration,
// compiles it into one nftables table (family inet), applies every change
// as one atomic transaction, persists the startup-config, repairs drift,
// and serves slxsh shells on a local unix socket.
//
//	aclagent [--config FILE] [--socket PATH] [--table NAME]
//	         [--mgmt-interface IF] [--interface-map ethernet0/1=eth1,...]
//	         [--admin-group GROUP] [--metrics ADDR]
//	aclagent --check FILE
//
// SIGHUP reloads the startup-config; SIGTERM and SIGINT stop the agent and
// leave the rules enforcing in the kernel.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/agent"
	"github.com/slxsh/slxsh/internal/agent/wire"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/conntrack"
	"github.com/slxsh/slxsh/internal/nft"
)

// version is the product version; it is the shell's, so that one
// -ldflags "-X github.com/slxsh/slxsh/internal/cli.Version=..." stamps both
// binaries.
var version = cli.Version

// flags are the command-line options (SPEC §6).
type flags struct {
	config      string
	socket      string
	state       string
	lastGood    string
	table       string
	mgmt        string
	ifmap       string
	adminGroup  string
	metrics     string
	check       string
	loadavg     string
	showVersion bool
	setSize     int   // --limit-set-size (setlimits.go)
	setMemory   int64 // --limit-set-memory in MiB; -1: one eighth of MemTotal
	messagePort int   // --message-port: first port of the refuse message responder
	logGroup    int   // --log-group: NFLOG group of `log` entries
}

// parseFlags reads the command line. Help and errors are printed by run
// (usage.go), not by the flag package.
func parseFlags(args []string) (*flags, error) {
	var f flags
	fs := newFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	f.socket = wire.SocketPath(f.socket)
	if f.state == "" {
		f.state = filepath.Join(filepath.Dir(f.socket), "running-config")
	}
	if f.lastGood == "" {
		f.lastGood = filepath.Join(filepath.Dir(f.config), "last-good-config")
	}
	return &f, nil
}

// newFlagSet declares the options into f.
func newFlagSet(f *flags) *flag.FlagSet {
	fs := flag.NewFlagSet("aclagent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&f.config, "config", "/etc/slxsh/startup-config", "startup-config `FILE`: loaded at start and on SIGHUP, written by write memory")
	fs.StringVar(&f.socket, "socket", "", "unix socket `PATH` (default $SLXSH_SOCKET or "+wire.DefaultSocket+")")
	fs.StringVar(&f.state, "state", "", "`FILE` keeping the running-config for a restarted agent (default: running-config next to the socket)")
	fs.StringVar(&f.lastGood, "last-good", "", "`FILE` keeping the last configuration applied successfully, installed when the startup-config cannot be loaded or has gone missing (default: last-good-config next to --config)")
	fs.StringVar(&f.table, "table", nft.DefaultTable, "nftables table `NAME` (family inet)")
	fs.StringVar(&f.mgmt, "mgmt-interface", "", "Linux interface `IF` for interface management 0 (default: the default route's)")
	fs.StringVar(&f.ifmap, "interface-map", "", "what interface ethernet S/P means: `ethernet0/1=eth1,...`")
	fs.StringVar(&f.adminGroup, "admin-group", "slxsh", "`GROUP` whose members may change the config (besides root)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9469)")
	fs.StringVar(&f.check, "check", "", "validate config `FILE`, print the compiled ruleset, and exit (no kernel)")
	fs.StringVar(&f.loadavg, "loadavg-file", "/proc/loadavg", "where load-limit reads the 1-minute load average (`FILE` in /proc/loadavg format)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.IntVar(&f.setSize, "limit-set-size", 0, "declare every limit set (connlimit, rate, quota, block-for) with size `N`: at most N keys (sources, prefixes, ...) each, for which the kernel preallocates memory; 0: unsized, growing on demand up to the kernel's 65535 keys")
	fs.IntVar(&f.messagePort, "message-port", nft.DefaultMessagePort, "first local TCP `PORT` of the refuse message responder: the kernel redirects connections refused with the I-th message text to PORT+I (nothing else may listen there)")
	fs.IntVar(&f.logGroup, "log-group", nft.DefaultLogGroup, "NFLOG `GROUP` (1-65535) to which log entries send their events; the agent reads it for its log and show logging")
	fs.Int64Var(&f.setMemory, "limit-set-memory", -1, "refuse configs whose limit sets could take more than `MiB` of kernel memory when full (default one eighth of MemTotal; 0: no check)")
	return fs
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage())
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "aclagent: %v\n%s", err, usage())
		return 2
	}
	if f.showVersion {
		fmt.Fprintln(stdout, "aclagent", version)
		return 0
	}
	opts, err := compileOptions(f)
	if err != nil {
		fmt.Fprintln(stderr, "aclagent:", err)
		return 2
	}
	if f.check != "" {
		return check(f.check, opts, stdout, stderr)
	}
	log := newLogger(stderr) // systemd.go: priorities for the journal
	if err := serve(f, opts, log); err != nil {
		log.Error("aclagent stopped", "err", err)
		if errors.Is(err, agent.ErrUnsafeDir) {
			return exitUnsafe
		}
		return 1
	}
	return 0
}

// exitUnsafe is the exit status of an agent that refuses its directories
// (EX_CONFIG): the unit's RestartPreventExitStatus does not restart it,
// since nothing changes until an administrator fixes them.
const exitUnsafe = 78

// compileOptions turns the interface and table flags into nft.Options.
func compileOptions(f *flags) (nft.Options, error) {
	// Time ranges are in the host's zone (TZ, /etc/localtime) at the
	// offset of now; hostOptions renews Now for every compile.
	o := nft.Options{Table: f.table, MgmtInterface: f.mgmt, LookupUser: nft.LookupUser, Zone: time.Local, Now: time.Now()}
	if f.messagePort < 1 || f.messagePort+nft.MaxMessages-1 > 65535 {
		return o, fmt.Errorf("--message-port %d: want 1 to %d", f.messagePort, 65535-nft.MaxMessages+1)
	}
	if f.logGroup < 1 || f.logGroup > 65535 {
		return o, fmt.Errorf("--log-group %d: want 1 to 65535", f.logGroup)
	}
	o.MessagePort, o.LogGroup = uint16(f.messagePort), uint16(f.logGroup)
	if o.MgmtInterface == "" {
		o.MgmtInterface, _ = agent.DefaultRouteInterface()
	}
	if f.ifmap != "" {
		m, err := agent.ParseInterfaceMap(f.ifmap)
		if err != nil {
			return o, fmt.Errorf("--interface-map: %w", err)
		}
		o.InterfaceMap = m
	}
	return o, setLimits(f, &o)
}

// check is --check FILE: parse, validate and compile, print the ruleset.
func check(path string, o nft.Options, stdout, stderr io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "%% Error: %v\n", err)
		return 1
	}
	text, err := agent.CheckText(path, data) // what the agent refuses to load too
	var cfg *acl.Config
	if err == nil {
		cfg, err = cli.ParseConfig(text)
	}
	if err == nil {
		err = acl.Validate(cfg)
	}
	var rs *nft.Ruleset
	if err == nil {
		rs, err = nft.Compile(cfg, o)
	}
	if err != nil {
		for _, e := range agent.FlattenErrors(err) {
			fmt.Fprintln(stderr, checkError(path, e))
		}
		return 1
	}
	fmt.Fprint(stdout, rs.String())
	return 0
}

// checkError formats one problem as slxsh scripts do: "FILE:LINE: % ..."
// with the line and a caret for invalid input, or "FILE: % Error: ..." for
// problems of the whole configuration.
func checkError(path string, err error) string {
	var fe *agent.FileError
	if errors.As(err, &fe) {
		return fe.Error()
	}
	var le *cli.LineError
	if errors.As(err, &le) {
		msg := fmt.Sprintf("%s:%d: %s", path, le.Line+1, le.Error())
		if le.Caret() {
			msg = fmt.Sprintf("%s\n%s\n%s^", msg, le.Text, strings.Repeat(" ", le.Col))
		}
		return msg
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "%") {
		msg = "% Error: " + msg
	}
	return path + ": " + msg
}

// serve runs the daemon until SIGTERM or SIGINT. The socket is claimed
// first, so that a second agent fails before it touches the kernel; shells
// that connect while the config is installed wait in the listen backlog.
func serve(f *flags, o nft.Options, log *slog.Logger) error {
	if !netAdmin() {
		return errors.New("aclagent needs root (CAP_NET_ADMIN) for nftables and conntrack: sudo aclagent, or the systemd unit (dist/INSTALL.md)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	if before, after, err := agent.RaiseFileLimit(); err != nil {
		log.Warn("cannot raise the open-files limit", "err", err, "limit", before)
	} else if after != before {
		log.Info("open-files limit raised", "from", before, "to", after)
	}
	responder := agent.NewResponder(agent.ResponderOptions{Logger: log})
	defer responder.Close()
	events := agent.NewEventLog(0, log)
	a, kernel, tracker := buildAgent(f, o, log, responder, events)
	// The rule handles of the last commit, saved in the background: on
	// disk before the process ends, for the next agent (nft/applystate.go);
	// after a.Flush (deferred below), which waits for a change under way.
	defer kernel.Flush()
	defer a.Flush() // the last good configuration, on disk before the process ends
	if tracker != nil {
		defer tracker.Close()
	}
	auth, warn := agent.NewAuthorizer(f.adminGroup)
	if warn != "" {
		log.Warn(warn)
	}
	if o.MgmtInterface == "" {
		log.Warn("no default route and no --mgmt-interface: interface management 0 maps to no Linux interface")
	}
	// The directories the agent writes in: created by it, refused when
	// another user could plant files there (agent/dirs.go).
	if err := agent.EnsureDirs(filepath.Dir(f.socket), filepath.Dir(f.state), filepath.Dir(f.config), filepath.Dir(f.lastGood)); err != nil {
		return fmt.Errorf("refusing to start: %w", err)
	}
	log.Info("starting", "version", version, "table", "inet "+o.Table, "socket", f.socket,
		"config", f.config, "mgmt_interface", o.MgmtInterface, "admin_group", f.adminGroup)
	srv := agent.NewServer(a, auth)
	if err := srv.Listen(f.socket); err != nil {
		return err
	}
	// The only agent now (Listen refuses a live socket): what a killed
	// one's writes left can go (the agent's own files: at Start).
	if err := kernel.RemoveTemps(); err != nil {
		log.Warn("cannot remove the temp files of an earlier agent", "err", err)
	}
	startEventLog(ctx, o.LogGroup, events, log)
	go watchElements(ctx, kernel, log)
	if _, err := a.Start(); err != nil {
		srv.Close()
		return err
	}
	if f.metrics != "" {
		if err := startMetrics(ctx, f.metrics, a, log); err != nil {
			srv.Close()
			return err
		}
	}
	go a.Run(ctx)
	if tracker != nil {
		go tracker.Run(ctx, sessionRefresh)
	}
	go reloadOnHUP(ctx, hup, a, f.config, log)
	go watchdog(ctx, f.socket, log) // systemd.go
	log.Info("ready")
	notify(log, daemon.SdNotifyReady+"\nSTATUS=serving on "+f.socket)
	err := srv.Serve(ctx)
	notify(log, daemon.SdNotifyStopping)
	log.Info("stopping; the rules stay in the kernel")
	return err
}

// netAdmin reports whether the process has CAP_NET_ADMIN in its effective
// set (root has it), which every netlink write to nftables needs. When the
// capabilities cannot be read it says yes and lets the kernel decide.
func netAdmin() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[0].Effective&(1<<unix.CAP_NET_ADMIN) != 0
}

// buildAgent builds the agent on the netlink applier (returned too), with
// the session tracker when conntrack can be opened.
func buildAgent(f *flags, o nft.Options, log *slog.Logger, messages agent.MessageServer, events *agent.EventLog) (*agent.Agent, *nft.Applier, *conntrack.Tracker) {
	host := hostOptions(f, o)
	resolve := resolver(host)
	kernel := nft.NewApplier(o.Table)
	// The rule handles, beside the agent's state: a restarted agent whose
	// table nobody changed since changes only what changed (nft/applystate.go).
	kernel.SetStatePath(filepath.Join(filepath.Dir(f.state), "nft-handles"))
	tracker := openTracker(kernel, resolve, log)
	opts := agent.Options{
		Kernel:  kernel,
		Compile: func(c *acl.Config) (*nft.Ruleset, error) { return nft.Compile(c, host()) },
		// Without --mgmt-interface, management 0 follows the default route.
		MgmtFollowsRoute: f.mgmt == "",
		StartupPath:      f.config,
		StatePath:        f.state,
		LastGoodPath:     f.lastGood,
		Resolve:          resolve,
		Load:             func() (float64, error) { return agent.LoadAverageFrom(f.loadavg) },
		Messages:         messages,
		Events:           events,
		LookupUser:       nft.LookupUser,
		Version:          version,
		Logger:           log,
	}
	if tracker != nil {
		opts.Sessions = tracker
	}
	return agent.New(opts), kernel, tracker
}

// startMetrics serves Prometheus metrics on addr until ctx ends.
func startMetrics(ctx context.Context, addr string, a *agent.Agent, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--metrics: %w", err)
	}
	go func() {
		if err := agent.ServeMetrics(ctx, ln, a); err != nil {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return nil
}

// reloadOnHUP reloads the startup-config on every SIGHUP until ctx ends.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, a *agent.Agent, path string, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			log.Info("SIGHUP: reloading the startup-config", "path", path)
			notify(log, daemon.SdNotifyReloading)
			if _, err := a.Reload(); err != nil {
				log.Error("reload failed", "err", err)
			}
			notify(log, daemon.SdNotifyReady)
		}
	}
}

// sessionRefresh is how often the session tracker gives back the budget
// of sessions that were open before their limit and have ended since.
const sessionRefresh = time.Second

// openTracker opens the session side (conntrack, sock_diag) in the agent's
// namespace. Without it the agent still enforces every limit, but sessions
// open before a limit was applied are not counted and the session commands
// are unavailable: that is logged as an error, not fatal.
func openTracker(owner conntrack.Owner, resolve func(acl.IfKind, string) string, log *slog.Logger) *conntrack.Tracker {
	loc, err := conntrack.NewRouteLocator(0)
	if err != nil {
		log.Error("session tracking off: cannot open the route locator", "err", err)
		return nil
	}
	t, err := conntrack.NewTracker(conntrack.TrackerOptions{
		Owner:   owner,
		IfName:  func(i *acl.Interface) string { return resolve(i.Kind, i.Name) },
		Locator: loc,
		Logger:  log,
	})
	if err != nil {
		loc.Close()
		log.Error("session tracking off: cannot open conntrack", "err", err)
		return nil
	}
	return t
}

// hostOptions returns the compile options as the host has them now:
// without --mgmt-interface, management 0 follows the default route, which
// may appear after the agent started (at boot) or move to another
// interface; the agent's periodic recompile picks that up.
func hostOptions(f *flags, o nft.Options) func() nft.Options {
	o.Cache = &nft.Cache{} // each entry compiled once while it stays the same
	return func() nft.Options {
		now := o
		now.Now = time.Now()
		if f.mgmt != "" {
			return now
		}
		if dev, _ := agent.DefaultRouteInterface(); dev != "" {
			now.MgmtInterface = dev
		}
		return now
	}
}

// resolver maps interface blocks to Linux names as the compiler does.
func resolver(host func() nft.Options) func(acl.IfKind, string) string {
	return func(kind acl.IfKind, name string) string {
		o := host()
		switch kind {
		case acl.IfManagement:
			return o.MgmtInterface
		case acl.IfEthernet:
			if dev, ok := o.InterfaceMap[name]; ok {
				return dev
			}
			return o.InterfaceMap["ethernet"+name]
		}
		return name
	}
}

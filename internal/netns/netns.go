// Package netns builds throw-away network namespaces for kernel tests.
//
// Every namespace is created for one test and removed in t.Cleanup, so tests
// never touch the host's own interfaces, routes or nftables ruleset:
//
//	netns.RequireRoot(t)            // skip when not root; t.Fatal under CI=true
//	c, s := netns.New(t), netns.New(t)
//	netns.Link(t, c, "c0", s, "s0") // veth pair c0 (in c) <-> s0 (in s), both up
//	c.AddAddr(t, "c0", "10.0.0.1/24")
//	s.AddAddr(t, "s0", "10.0.0.2/24")
//	s.Listen(t, "10.0.0.2:22")      // accepts, holds and echoes connections
//	conn := c.Expect(t, "", "10.0.0.2:22", netns.Connected)
//
// IPv6 addresses are added with nodad so they are usable at once. A routing
// namespace in the middle gets forwarding with Forwarding (set inside that
// namespace only); the ends get routes with Route. NewPair and NewRouted
// build the two usual topologies in one call.
//
// Go code runs inside a namespace with Do (the goroutine's thread is locked
// and switched with setns, then switched back); sockets created inside stay
// in that namespace, which is how Listen and Dial work. Commands run inside
// with Exec (`ip netns exec`), and NFT opens a *nftables.Conn whose netlink
// sockets live in the namespace.
//
// Dial tells apart the outcomes that matter for filtering: Connected, Reset
// (ECONNREFUSED or ECONNRESET: a TCP reset), Unreachable (an ICMP error),
// Blocked (EPERM: dropped by the local output path) and TimedOut (dropped
// silently somewhere on the way). ListenUDP and ExchangeUDP do the same for
// UDP: one datagram echoed back is Connected, an ICMP port unreachable is
// Reset, administratively prohibited is Unreachable.
package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// RequireRoot skips the test when the process is not root. Under CI=true a
// missing privilege is a failure instead, so kernel tests cannot silently
// stop running in CI.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("kernel test needs root (CI=true: not skipping)")
	}
	t.Skip("kernel test needs root")
}

// NS is a named network namespace that lives for the duration of one test.
type NS struct {
	// Name is the namespace name, as `ip netns` knows it
	// (slxt-<pid>-<random>).
	Name string
	fd   int // open handle on /run/netns/Name
}

// New creates a fresh namespace with loopback up, removed at the end of the
// test. It calls RequireRoot first.
func New(t testing.TB) *NS {
	t.Helper()
	RequireRoot(t)
	removeOrphans()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random namespace name: %v", err)
	}
	name := fmt.Sprintf("%s%d-%s", prefix, os.Getpid(), hex.EncodeToString(b[:]))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	n := &NS{Name: name, fd: -1}
	t.Cleanup(func() {
		if n.fd >= 0 {
			unix.Close(n.fd)
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	n.fd = fd
	// Why: with duplicate address detection, link-local addresses stay
	// tentative for a second; a router whose link-local is tentative sends
	// neighbour solicitations from :: that the peer takes for DAD probes and
	// never answers, so the first routed IPv6 connection is lost.
	n.MustExec(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	n.MustExec(t, "ip", "link", "set", "lo", "up")
	return n
}

// prefix starts the name of every namespace New makes; the creating
// process's id follows.
const prefix = "slxt-"

// removeOrphans deletes namespaces that New made in processes that no
// longer exist: a test binary that was killed (a timeout, a closed output
// pipe) never ran its cleanups.
func removeOrphans() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok {
			continue
		}
		pid, _, ok := strings.Cut(rest, "-")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(pid)
		if err != nil || n <= 0 || unix.Kill(n, 0) != unix.ESRCH {
			continue // not ours, or its process is alive (or not ours to signal)
		}
		exec.Command("ip", "netns", "del", e.Name()).Run()
	}
}

// Fd returns a file descriptor referring to the namespace, valid until the
// end of the test.
func (n *NS) Fd() int { return n.fd }

// Exec runs a command inside the namespace and returns its combined output.
func (n *NS) Exec(args ...string) (string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.Name}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), n.Name, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// MustExec is Exec that fails the test on error.
func (n *NS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do runs f on an OS thread switched into the namespace. Sockets that f
// creates stay in the namespace after Do returns; goroutines that f starts
// do not run in the namespace. Commands that f starts with os/exec are
// forked from this thread and do.
func (n *NS) Do(f func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("open current namespace: %w", err)
	}
	defer unix.Close(orig)
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", n.Name, err)
	}
	ferr := f()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Why: a thread left in the wrong namespace must never run other
		// goroutines; staying locked makes the runtime discard it when this
		// goroutine exits.
		return fmt.Errorf("leave namespace %s: %w", n.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// NFT opens an nftables connection that operates inside the namespace.
func (n *NS) NFT(t testing.TB) *nftables.Conn {
	t.Helper()
	c, err := nftables.New(nftables.WithNetNSFd(n.fd))
	if err != nil {
		t.Fatalf("nftables conn in %s: %v", n.Name, err)
	}
	return c
}

// Link creates a veth pair: aIf in a and bIf in b, both up.
func Link(t testing.TB, a *NS, aIf string, b *NS, bIf string) {
	t.Helper()
	a.MustExec(t, "ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.MustExec(t, "ip", "link", "set", aIf, "up")
	b.MustExec(t, "ip", "link", "set", bIf, "up")
}

// AddAddr adds an address in CIDR form (v4 or v6) to an interface. IPv6
// addresses skip duplicate address detection so they are usable at once.
func (n *NS) AddAddr(t testing.TB, ifname, cidr string) {
	t.Helper()
	args := []string{"ip", "addr", "add", cidr, "dev", ifname}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	n.MustExec(t, args...)
}

// Route adds a route to dst (a prefix or "default") via a gateway address.
func (n *NS) Route(t testing.TB, dst, via string) {
	t.Helper()
	fam := "-4"
	if strings.Contains(via, ":") {
		fam = "-6"
	}
	n.MustExec(t, "ip", fam, "route", "add", dst, "via", via)
}

// Forwarding turns on IPv4 and IPv6 forwarding inside the namespace only.
func (n *NS) Forwarding(t testing.TB) {
	t.Helper()
	n.MustExec(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	n.MustExec(t, "sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1")
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// Issue 12: whatever a local user does with the socket, the agent stays
// alive, small, and answers an administrator's change in under a second.

// floodEnv runs the test binary as a flood helper (floodMain) instead of
// the tests: "MODE UID SOCKET N SIZE".
const floodEnv = "ACLAGENT_TEST_FLOOD"

func init() {
	if spec := os.Getenv(floodEnv); spec != "" {
		os.Exit(floodMain(spec))
	}
}

// floodMain is a local user flooding the agent's socket, run as its own
// process so that the agent sees its uid (SO_PEERCRED). Modes:
//
//	idle: open N connections and hold them (send nothing)
//	big:  N connections at once, each sending a SIZE-byte request
//	      (streamed, never held in memory), again and again
//	show: N goroutines sending `show running-config` requests in a loop
//	noread: N connections each asking for the running-config, held
//	      open without reading the answer
//
// It prints "ready" once started, runs until its stdin closes, and then
// prints what it saw.
func floodMain(spec string) int {
	var mode, sock string
	var uid, n, size int
	if _, err := fmt.Sscan(spec, &mode, &uid, &sock, &n, &size); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return 2
	}
	if uid != 0 { // drop to the guest user before connecting
		if err := dropTo(uid); err != nil {
			fmt.Fprintln(os.Stderr, "flood:", err)
			return 2
		}
	}
	var stop atomic.Bool
	var opened, answered, refused, failed atomic.Int64
	var wg sync.WaitGroup
	switch mode {
	case "idle", "noread":
		var conns []net.Conn
		for range n {
			c, err := net.Dial("unix", sock)
			if err != nil {
				failed.Add(1)
				continue
			}
			opened.Add(1)
			if mode == "noread" {
				c.(*net.UnixConn).SetReadBuffer(4096)
				io.WriteString(c, `{"version":2,"op":"running","args":{}}`+"\n")
			}
			conns = append(conns, c)
		}
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
	case "big", "show":
		for range n {
			wg.Go(func() {
				for !stop.Load() {
					resp, err := floodRequest(sock, mode, size)
					switch {
					case err != nil:
						failed.Add(1)
					case resp.Error != "":
						refused.Add(1)
					default:
						answered.Add(1)
					}
					opened.Add(1)
				}
			})
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	stop.Store(true)
	wg.Wait()
	fmt.Printf("connections=%d answered=%d refused=%d failed=%d\n", opened.Load(), answered.Load(), refused.Load(), failed.Load())
	return 0
}

func dropTo(uid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(uid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

// floodResponse is the part of the agent's answer the helper looks at.
type floodResponse struct {
	Error string `json:"error"`
}

// floodRequest sends one request: a show, or a show with a size-byte
// argument written in chunks.
func floodRequest(sock, mode string, size int) (*floodResponse, error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if mode == "show" {
		io.WriteString(c, `{"version":2,"op":"running","args":{}}`+"\n")
	} else {
		// The agent stops reading at its limit and answers: the writes
		// then fail, and the answer is still there to read.
		w := bufio.NewWriterSize(c, 64<<10)
		w.WriteString(`{"version":2,"op":"running","args":"`)
		chunk := strings.Repeat("A", 64<<10)
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.WriteString(chunk); err != nil {
				break
			}
		}
		w.WriteString("\"}\n")
		w.Flush()
	}
	var resp floodResponse
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// flood is a running flood helper.
type flood struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// startFlood starts a helper and waits until it is under way.
func startFlood(t *testing.T, mode string, uid int, sock string, n, size int) *flood {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s %d %d", floodEnv, mode, uid, sock, n, size))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &flood{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { f.stop() })
	if line, err := f.out.ReadString('\n'); line != "ready\n" {
		t.Fatalf("flood %s: %q, %v", mode, line, err)
	}
	return f
}

// stop ends the helper and returns its summary line.
func (f *flood) stop() string {
	if f.cmd == nil {
		return ""
	}
	f.stdin.Close()
	line, _ := f.out.ReadString('\n')
	f.cmd.Wait()
	f.cmd = nil
	return strings.TrimSpace(line)
}

// procStatus reads a field of /proc/PID/status in kB.
func procStatus(t testing.TB, pid int, field string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("agent gone? %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// adminChange makes one configuration change as root and returns how long
// the shell took.
func adminChange(t *testing.T, ag *agentProc, host string) time.Duration {
	t.Helper()
	start := time.Now()
	ag.mustShell("", "-c", "configure terminal; hostname "+host)
	return time.Since(start)
}

// agentPid is the agent's process (ip netns exec replaces itself with it).
func agentPid(t testing.TB, ag *agentProc) int {
	t.Helper()
	pid := ag.cmd.Process.Pid
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) != "aclagent" {
		t.Fatalf("pid %d is %q, not aclagent", pid, comm)
	}
	return pid
}

// rssLimitKB and changeLimit are the bounds of the acceptance test (200
// MB, 1 s). A -race build (not what CI runs for this package) needs
// several times the memory for its shadow state, and a race-built slxsh
// and agent take about a second for a change even without a flood.
func rssLimitKB() int {
	if raceBuild {
		return 1000 << 10
	}
	return 200 << 10
}

func changeLimit() time.Duration {
	if raceBuild {
		return 5 * time.Second
	}
	return time.Second
}

const guestUID = 65534 // nobody

// TestKernelGuestWhoDoesNotRead: a local user whose requests for a large
// running-config are never read cannot keep another local user's show
// out. Before, two such requests held both guest slots for the 30 s write
// timeout and every other guest got "the agent is busy"; now one uid runs
// one request at a time, and a guest's answer may take 5 s to be read.
func TestKernelGuestWhoDoesNotRead(t *testing.T) {
	_, ag := slxSetup(t)
	var cfg strings.Builder
	cfg.WriteString("configure terminal\nip access-list extended big\n")
	for i := 1; i <= 20000; i++ { // a running-config of about 900 kB, more than the socket buffers hold
		fmt.Fprintf(&cfg, "seq %d permit tcp any host 10.%d.%d.%d eq 22\n", i, i>>16, (i>>8)&255, i&255)
	}
	ag.mustShell(cfg.String())
	noread := startFlood(t, "noread", guestUID, ag.sock, 8, 0) // 8: as many as one guest uid may open
	defer noread.stop()
	time.Sleep(200 * time.Millisecond) // the agent takes their requests
	other := &syscall.Credential{Uid: guestUID - 1, Gid: guestUID - 1, Groups: []uint32{}}
	for i := range 3 {
		if r := ag.shellAs(other, "", "-c", "show version"); r.code != 0 || !strings.Contains(r.out, "slxsh version") {
			t.Fatalf("another guest's show %d beside unread requests: %v", i, r)
		}
	}
}

// TestKernelSocketFlood is the acceptance test of issue 12 for the socket:
// 2000 idle connections and 50 × 100 MB requests of a local user, 50 ×
// 100 MB requests of root, and 32 threads of a local user asking `show
// running-config` in a loop, all at once: the agent stays alive, its RSS
// stays under 200 MB, and an administrator's change is answered in under
// a second all along.
func TestKernelSocketFlood(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell(slxExample)
	pid := agentPid(t, ag)
	rssBefore := procStatus(t, pid, "VmRSS")
	quiet := adminChange(t, ag, "quiet")

	idle := startFlood(t, "idle", guestUID, ag.sock, 2000, 0)
	floods := []*flood{
		startFlood(t, "big", guestUID, ag.sock, 50, 100<<20),
		startFlood(t, "big", 0, ag.sock, 50, 100<<20),
		startFlood(t, "show", guestUID, ag.sock, 32, 0),
	}
	var worst time.Duration
	changes := 0
	for deadline := time.Now().Add(8 * time.Second); time.Now().Before(deadline); changes++ {
		d := adminChange(t, ag, fmt.Sprintf("flood%d", changes))
		worst = max(worst, d)
		if d >= changeLimit() {
			t.Errorf("admin change %d took %v under the flood", changes, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
	repair := tableRestoredIn(t, ag)
	rssFlood := procStatus(t, pid, "VmRSS")
	var summaries []string
	for _, f := range append(floods, idle) {
		summaries = append(summaries, f.stop())
	}
	peak := procStatus(t, pid, "VmHWM")
	t.Logf("RSS before %d kB, under the flood %d kB, peak %d kB (limit %d kB); admin change %v quiet, worst %v of %d under the flood; deleted table restored in %v",
		rssBefore, rssFlood, peak, rssLimitKB(), quiet, worst, changes, repair)
	if repair >= 2*time.Second {
		t.Errorf("deleted table restored in %v under the flood, want < 2 s", repair)
	}
	t.Logf("floods (guest big, root big, guest show, guest idle): %s", strings.Join(summaries, "; "))
	if peak > rssLimitKB() {
		t.Errorf("agent peak RSS %d kB, over %d kB", peak, rssLimitKB())
	}
	select {
	case err := <-ag.done:
		ag.done <- err
		t.Fatalf("agent exited under the flood: %v\n%s", err, ag.log)
	default:
	}
	if !strings.Contains(ag.running(), fmt.Sprintf("host-name flood%d", changes-1)) {
		t.Error("last admin change missing from the running-config")
	}
	// Still enforcing the limit.
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)
}

// tableRestoredIn deletes the agent's table and returns how long the agent
// took to restore it (drift repair), at most 10 s.
func tableRestoredIn(t *testing.T, ag *agentProc) time.Duration {
	t.Helper()
	ag.ns.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	start := time.Now()
	for time.Since(start) < 10*time.Second && !strings.Contains(nftTable(ag.ns), "acl=check") {
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestKernelSocketSurvivesFileLimit: with its descriptors exhausted the
// agent keeps accepting (after a back-off) instead of exiting, and
// answers again once connections close.
func TestKernelSocketSurvivesFileLimit(t *testing.T) {
	_, ag := slxSetup(t)
	ag.mustShell(slxExample)
	pid := agentPid(t, ag)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile=64:64").CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v: %s", err, out)
	}
	var conns []net.Conn
	for range 200 { // root's idle connections: not bounded per peer
		c, err := net.DialTimeout("unix", ag.sock, time.Second)
		if err != nil {
			break // the backlog is full: the agent is not accepting
		}
		conns = append(conns, c)
	}
	time.Sleep(1500 * time.Millisecond)
	if !strings.Contains(ag.log.String(), "accept failed; retrying") || !strings.Contains(ag.log.String(), "out_of_fds=true") {
		t.Errorf("no EMFILE back-off logged with %d connections open:\n%s", len(conns), ag.log)
	}
	for _, c := range conns {
		c.Close()
	}
	d := adminChange(t, ag, "after-emfile")
	select {
	case err := <-ag.done:
		ag.done <- err
		t.Fatalf("agent exited when out of descriptors: %v\n%s", err, ag.log)
	default:
	}
	t.Logf("%d idle connections held; change answered %v after they closed", len(conns), d)
	if d > 3*time.Second {
		t.Errorf("change took %v after the descriptors were back", d)
	}
}

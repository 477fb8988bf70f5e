package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/netns"
)

// The SLX example of issue 2 with the test topology's addresses: the
// client 10.0.0.1 may hold 3 connections to the server's port 22.
var slxExample = fmt.Sprintf(`conf term
ip access-list extended check
permit tcp host %s host %s eq 22 connlimit 3
end
conf term
interface management 0
ip access-group check in
end
`, netns.PairClient4, netns.PairServer4)

var ssh = net.JoinHostPort(netns.PairServer4, "22")

// slxSetup is a Pair with a service on the server's port 22 and an agent
// in the server namespace whose management interface is s0.
func slxSetup(t *testing.T, extra ...string) (*netns.Pair, *agentProc) {
	t.Helper()
	p := netns.NewPair(t)
	p.Server.Listen(t, ssh)
	ag := newAgent(t, p.Server, "s0", extra...)
	ag.start()
	return p, ag
}

// expectN dials n times and expects each outcome in turn.
func expectN(t *testing.T, ns *netns.NS, addr string, n int, want netns.Outcome) {
	t.Helper()
	for range n {
		ns.Expect(t, "", addr, want)
	}
}

// counters extracts "(M matches, R refused" of an entry from
// `show access-list` output.
func counters(t *testing.T, show string, seq int) (matches, refused int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^ seq ` + strconv.Itoa(seq) + ` .*\((\d+) matches, (\d+) refused`)
	m := re.FindStringSubmatch(show)
	if m == nil {
		t.Fatalf("no counters for seq %d in:\n%s", seq, show)
	}
	matches, _ = strconv.Atoi(m[1])
	refused, _ = strconv.Atoi(m[2])
	return matches, refused
}

func TestKernelEndToEnd(t *testing.T) {
	p, ag := slxSetup(t)
	// The SLX example fed to slxsh in scripted mode (stdin not a terminal).
	ag.mustShell(slxExample)
	run := ag.running()
	for _, want := range []string{"ip access-list extended check\n", " seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3\n", "interface management 0\n", " ip access-group check in\n"} {
		if !strings.Contains(run, want) {
			t.Errorf("running-config lacks %q:\n%s", want, run)
		}
	}
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)

	show := ag.mustShell("", "-c", "show access-list ip check")
	if m, r := counters(t, show, 10); m != 4 || r != 1 {
		t.Errorf("seq 10: %d matches, %d refused; want 4, 1:\n%s", m, r, show)
	}
	if nft := ag.mustShell("", "-c", "show nftables"); !strings.Contains(nft, "table inet slxsh") || !strings.Contains(nft, "ct count over 3") {
		t.Errorf("show nftables:\n%s", nft)
	}
	if v := ag.mustShell("", "-c", "show version"); !strings.Contains(v, "Kernel: Linux") || !strings.Contains(v, "Agent: aclagent") {
		t.Errorf("show version:\n%s", v)
	}
	if out := ag.mustShell("", "-c", "show access-list interface management 0 in"); !strings.Contains(out, " seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3") {
		t.Errorf("show access-list interface management 0 in:\n%s", out)
	}
	if out := ag.mustShell("", "-c", "show ip access-group"); !strings.Contains(out, "check") || !strings.Contains(out, "management 0") {
		t.Errorf("show ip access-group:\n%s", out)
	}
	// clear access-list counters: show starts from zero again.
	ag.mustShell("", "-c", "clear access-list counters")
	show = ag.mustShell("", "-c", "show access-list ip check")
	if m, r := counters(t, show, 10); m != 0 || r != 0 {
		t.Errorf("after clear: %d matches, %d refused:\n%s", m, r, show)
	}
}

func TestKernelScriptErrorAppliesNothing(t *testing.T) {
	_, ag := slxSetup(t)
	ag.mustShell(slxExample)
	runBefore, nftBefore := ag.running(), nftTable(ag.ns)
	script := filepath.Join(ag.dir, "bad.cfg")
	os.WriteFile(script, []byte(`configure terminal
ip access-list extended check
seq 20 permit tcp any any eq 80
seq 30 permit tcp any any eq 443
seq 40 permit tcp any any eq 8443 connlimit
end
`), 0o644)
	r := ag.shell("", "-f", script)
	if r.code == 0 {
		t.Fatalf("a script with a bad line succeeded: %v", r)
	}
	if !strings.Contains(r.out+r.err, script+":5: % ") {
		t.Errorf("error does not name %s:5: %v", script, r)
	}
	if run := ag.running(); run != runBefore {
		t.Errorf("running-config changed:\n%s\nwas\n%s", run, runBefore)
	}
	if nft := nftTable(ag.ns); nft != nftBefore {
		t.Errorf("kernel table changed:\n%s\nwas\n%s", nft, nftBefore)
	}
}

func TestKernelKill9KeepsEnforcing(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell(slxExample)
	var open []net.Conn
	for range 3 {
		open = append(open, p.Client.Expect(t, "", ssh, netns.Connected))
	}
	p.Client.Expect(t, "", ssh, netns.Reset)

	ag.kill9()
	p.Client.Expect(t, "", ssh, netns.Reset) // while the agent is down

	ag.start()
	if !strings.Contains(ag.log.String(), "adopting the running-config") {
		t.Errorf("restarted agent did not adopt its running-config:\n%s", ag.log)
	}
	p.Client.Expect(t, "", ssh, netns.Reset) // after the restart
	show := ag.mustShell("", "-c", "show access-list ip check")
	if m, r := counters(t, show, 10); m != 6 || r != 3 {
		t.Errorf("seq 10 after restart: %d matches, %d refused; want 6, 3 (kept across the restart):\n%s", m, r, show)
	}
	for i, c := range open {
		if err := netns.Echo(c); err != nil {
			t.Errorf("connection %d open before the kill: %v", i+1, err)
		}
	}

	// Counters cleared before a kill -9 stay cleared after the restart.
	ag.mustShell("", "-c", "clear access-list counters")
	p.Client.Expect(t, "", ssh, netns.Reset)
	ag.kill9()
	ag.start()
	show = ag.mustShell("", "-c", "show access-list ip check")
	if m, r := counters(t, show, 10); m != 1 || r != 1 {
		t.Errorf("seq 10 after clear and restart: %d matches, %d refused; want 1, 1:\n%s", m, r, show)
	}
}

func TestKernelSIGHUPChangesOnlyWhatChanged(t *testing.T) {
	p := netns.NewPair(t)
	for _, port := range []string{"22", "80", "8080"} {
		p.Server.Listen(t, net.JoinHostPort(netns.PairServer4, port))
	}
	ag := newAgent(t, p.Server, "s0")
	startup := `ip access-list extended check
 seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3
 seq 20 permit tcp any any eq 80
!
interface management 0
 ip access-group check in
!
`
	os.WriteFile(ag.startup, []byte(startup), 0o644)
	ag.start()
	web, alt := net.JoinHostPort(netns.PairServer4, "80"), net.JoinHostPort(netns.PairServer4, "8080")
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)
	p.Client.Expect(t, "", web, netns.Connected)
	p.Client.Expect(t, "", alt, netns.Reset)

	os.WriteFile(ag.startup, []byte(strings.Replace(startup, "eq 80\n", "eq 8080\n", 1)), 0o644)
	ag.cmd.Process.Signal(syscall.SIGHUP)
	for i := 0; i < 100 && !strings.Contains(ag.running(), "eq 8080"); i++ { // at most ~10 s
		time.Sleep(100 * time.Millisecond)
	}
	if run := ag.running(); !strings.Contains(run, " seq 20 permit tcp any any eq 8080\n") {
		t.Fatalf("SIGHUP did not reload:\n%s\n%s", run, ag.log)
	}
	// The changed entry changed ...
	p.Client.Expect(t, "", alt, netns.Connected)
	p.Client.Expect(t, "", web, netns.Reset)
	// ... the unchanged one kept its count and counters.
	p.Client.Expect(t, "", ssh, netns.Reset)
	show := ag.mustShell("", "-c", "show access-list ip check")
	if m, r := counters(t, show, 10); m != 5 || r != 2 {
		t.Errorf("seq 10 after reload: %d matches, %d refused; want 5, 2:\n%s", m, r, show)
	}
}

func TestKernelDriftRepair(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell(slxExample)
	want := nftTable(ag.ns)
	if !strings.Contains(want, "acl=check") {
		t.Fatalf("table before drift:\n%s", want)
	}
	ag.ns.MustExec(t, "nft", "delete", "table", "inet", "slxsh")
	restored := false
	for i := 0; i < 20 && !restored; i++ { // poll for at most 2 s
		time.Sleep(100 * time.Millisecond)
		restored = strings.Contains(nftTable(ag.ns), `comment "acl=check dir=in seq=10"`)
	}
	if !restored {
		t.Fatalf("table not restored within 2 s:\n%s", ag.log)
	}
	// The restored limit counts the open sessions (none) behind a closed
	// gate first: wait for the repair to finish before dialling.
	for i := 0; i < 20 && !strings.Contains(ag.log.String(), "table restored"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)

	// A rule changed by someone else is put back too.
	ag.ns.MustExec(t, "nft", "flush", "chain", "inet", "slxsh", "ip_check_in")
	restored = false
	for i := 0; i < 20 && !restored; i++ {
		time.Sleep(100 * time.Millisecond)
		restored = strings.Contains(nftTable(ag.ns), `comment "acl=check dir=in seq=10"`)
	}
	if !restored {
		t.Fatalf("flushed chain not restored within 2 s:\n%s", ag.log)
	}
	p.Client.Expect(t, "", ssh, netns.Reset)
}

func TestKernelConcurrentShells(t *testing.T) {
	_, ag := slxSetup(t)
	ag.mustShell(slxExample)
	var wg sync.WaitGroup
	results := make([]shellResult, 2)
	for shell := range 2 {
		var b strings.Builder
		for i := range 50 {
			seq := 100 + shell*100 + i
			fmt.Fprintf(&b, "configure terminal\nip access-list extended check\nseq %d permit tcp any any eq %d\nend\n", seq, 1000+seq)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[shell] = ag.shell(b.String())
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("shell %d: %v", i, r)
		}
	}
	run := ag.running()
	for shell := range 2 {
		for i := range 50 {
			seq := 100 + shell*100 + i
			if want := fmt.Sprintf(" seq %d permit tcp any any eq %d\n", seq, 1000+seq); !strings.Contains(run, want) {
				t.Errorf("entry %d of shell %d lost", i, shell)
			}
		}
	}
	if n := strings.Count(run, "\n seq "); n != 101 {
		t.Errorf("%d entries, want 101:\n%s", n, run)
	}
	// Each entry is in the kernel: its rules, or (a plain permit in a
	// map) its counter map's element.
	table := nftTable(ag.ns)
	for shell := range 2 {
		for i := range 50 {
			seq := 100 + shell*100 + i
			if !strings.Contains(table, fmt.Sprintf("acl=check dir=in seq=%d\"", seq)) &&
				!strings.Contains(table, fmt.Sprintf(" : \"ip_check_in_%d_matches\"", seq)) {
				t.Errorf("entry %d of shell %d is not in the kernel", i, shell)
			}
		}
	}
}

func TestKernelNonAdminCannotChange(t *testing.T) {
	netns.RequireRoot(t)
	group := fmt.Sprintf("slxt%d", os.Getpid()%100000)
	if out, err := exec.Command("groupadd", group).CombinedOutput(); err != nil {
		t.Fatalf("groupadd: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", group).Run() })
	g, err := user.LookupGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	gid, _ := strconv.Atoi(g.Gid)

	_, ag := slxSetup(t, "--admin-group", group)
	ag.mustShell(slxExample)
	before := ag.running()

	nobody := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}
	r := ag.shellAs(nobody, "", "-c", "configure terminal; interface management 0; no ip access-group check in")
	if r.code == 0 || !strings.Contains(r.out+r.err, "% Error: permission denied") {
		t.Errorf("non-admin change: %v", r)
	}
	for _, cmd := range []string{"write memory", "clear access-list counters"} {
		if r := ag.shellAs(nobody, "", "-c", cmd); r.code == 0 || !strings.Contains(r.out+r.err, "% Error: permission denied") {
			t.Errorf("non-admin %s: %v", cmd, r)
		}
	}
	if run := ag.running(); run != before {
		t.Errorf("running-config changed by a non-admin:\n%s", run)
	}
	if _, err := os.Stat(ag.startup); err == nil {
		t.Error("a non-admin wrote the startup-config")
	}
	// Looking is allowed.
	if r := ag.shellAs(nobody, "", "-c", "show running-config"); r.code != 0 || r.out != before {
		t.Errorf("non-admin show running-config: %v", r)
	}
	// A member of the admin group may change the config.
	member := &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{uint32(gid)}}
	if r := ag.shellAs(member, "", "-c", "configure terminal; hostname changed-by-member"); r.code != 0 {
		t.Errorf("admin group member: %v", r)
	}
	if !strings.Contains(ag.running(), "host-name changed-by-member") {
		t.Error("admin group member's change missing")
	}
}

func TestKernelWriteMemoryAndRestart(t *testing.T) {
	p, ag := slxSetup(t)
	ag.mustShell(slxExample)
	ag.mustShell("", "-c", "write memory")
	saved, err := os.ReadFile(ag.startup)
	// The running-config, framed so that a cut file is told (issue 12).
	framed := "! slxsh configuration written by aclagent; complete only if its last line is \"end\"\n" + ag.running() + "end\n"
	if err != nil || string(saved) != framed {
		t.Fatalf("startup-config %q (%v) differs from the running-config", saved, err)
	}
	// The shell hides the closing `end` (AUTOMATION.md: automation that
	// compares the startup-config with the running-config sees no change).
	if got := ag.mustShell("", "-c", "show startup-config"); got != strings.TrimSuffix(string(saved), "end\n") {
		t.Errorf("show startup-config:\n%s", got)
	}
	// A clean stop leaves the rules enforcing.
	expectN(t, p.Client, ssh, 3, netns.Connected)
	ag.stop()
	p.Client.Expect(t, "", ssh, netns.Reset)
	if !strings.Contains(nftTable(ag.ns), "acl=check") {
		t.Error("SIGTERM removed the table")
	}
}

func TestKernelMetrics(t *testing.T) {
	p, ag := slxSetup(t, "--metrics", "127.0.0.1:9469")
	ag.mustShell(slxExample)
	expectN(t, p.Client, ssh, 3, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)

	// The endpoint listens inside the server namespace.
	body := scrapeMetrics(t, ag, "127.0.0.1:9469")
	for _, want := range []string{
		`slxsh_acl_matches_total{acl="check",direction="in",family="ip",seq="10"} 4`,
		`slxsh_acl_refusals_total{acl="check",direction="in",family="ip",seq="10"} 1`,
		`slxsh_acl_sessions{acl="check",family="ip",seq="10"} 3`,
		`slxsh_acl_keys_at_limit{acl="check",family="ip",seq="10"} 1`,
		`slxsh_agent_drift_repairs_total 0`,
		// The limit set holds the one source; the fill of every set the
		// packet path fills is there (issue 12).
		`slxsh_set_elements{kind="connlimit",set="ip_check_in_10_src_3"} 1`,
		`slxsh_set_capacity{kind="connlimit",set="ip_check_in_10_src_3"} 65535`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

// TestKernelMetricsSeveralLimits: slxsh_acl_sessions counts each session
// of an entry once, however many limits the entry has (each limit counts
// every session by its own key: before, 3 sessions read 6).
func TestKernelMetricsSeveralLimits(t *testing.T) {
	p, ag := slxSetup(t, "--metrics", "127.0.0.1:9469")
	ag.mustShell(fmt.Sprintf("conf term\nip access-list extended check\npermit tcp host %s host %s eq 22 connlimit 2 per-destination connlimit 3 total\nexit\ninterface management 0\nip access-group check in\nend\n",
		netns.PairClient4, netns.PairServer4))
	expectN(t, p.Client, ssh, 2, netns.Connected)
	body := ""
	for range 20 { // the session index follows conntrack events
		if body = scrapeMetrics(t, ag, "127.0.0.1:9469"); strings.Contains(body, `slxsh_acl_sessions{acl="check",family="ip",seq="10"} 2`+"\n") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("metrics lack slxsh_acl_sessions 2 for two sessions under two limits:\n%s", body)
}

// TestKernelSecondAgentTouchesNothing: an agent whose socket is taken by a
// running agent exits before it touches the kernel.
func TestKernelSecondAgentTouchesNothing(t *testing.T) {
	_, ag := slxSetup(t)
	out, err := exec.Command("ip", "netns", "exec", ag.ns.Name, filepath.Join(bin, "aclagent"),
		"--socket", ag.sock, "--config", ag.startup, "--table", "second", "--state", filepath.Join(ag.dir, "second-state")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another aclagent is listening") {
		t.Errorf("second agent: %v\n%s", err, out)
	}
	if tables := ag.ns.MustExec(t, "nft", "list", "tables"); strings.Contains(tables, "second") {
		t.Errorf("second agent created its table:\n%s", tables)
	}
	if r := ag.shell("", "-c", "show version"); r.code != 0 {
		t.Errorf("first agent no longer answers: %v", r)
	}
}

// TestKernelMissingInterface: binding an ACL to an interface that does not
// exist yet is accepted with a warning, and filters once it appears.
func TestKernelMissingInterface(t *testing.T) {
	p, ag := slxSetup(t)
	r := ag.shell("configure terminal\nip access-list extended late\nseq 10 deny tcp any any eq 22\nseq 20 permit ip any any\nexit\ninterface s1\nip access-group late in\nend\n")
	if r.code != 0 || !strings.Contains(r.err, "% Warning: interface s1 does not exist; the access-group takes effect when it appears") {
		t.Fatalf("binding a missing interface: %v", r)
	}
	if !strings.Contains(ag.running(), "interface s1\n ip access-group late in\n") {
		t.Fatal("binding not in the running-config")
	}
	netns.Link(t, p.Client, "c1", p.Server, "s1")
	p.Client.AddAddr(t, "c1", "10.0.1.1/24")
	p.Server.AddAddr(t, "s1", "10.0.1.2/24")
	late := p.Server.Listen(t, "10.0.1.2:22")
	p.Client.Expect(t, "", late.Addr, netns.Reset) // filtered on s1 now
	p.Client.Expect(t, "", ssh, netns.Connected)   // s0 is not bound
}

// TestKernelIPv6 runs an IPv6 ACL through the agent: limit, counters, show.
func TestKernelIPv6(t *testing.T) {
	p, ag := slxSetup(t)
	ssh6 := net.JoinHostPort(netns.PairServer6, "22")
	p.Server.Listen(t, ssh6)
	ag.mustShell(fmt.Sprintf("configure terminal\nipv6 access-list extended v6\npermit tcp host %s host %s eq 22 connlimit 2\npermit ipv6 any any\nexit\ninterface management 0\nipv6 access-group v6 in\nend\n", netns.PairClient6, netns.PairServer6))
	expectN(t, p.Client, ssh6, 2, netns.Connected)
	p.Client.Expect(t, "", ssh6, netns.Reset)
	p.Client.Expect(t, "", ssh, netns.Connected) // IPv4 is not filtered
	show := ag.mustShell("", "-c", "show access-list ipv6 v6")
	if m, r := counters(t, show, 10); m != 3 || r != 1 {
		t.Errorf("seq 10: %d matches, %d refused; want 3, 1:\n%s", m, r, show)
	}
	ag.mustShell("", "-c", "clear access-list counters ipv6 v6")
	if m, _ := counters(t, ag.mustShell("", "-c", "show access-list ipv6 v6"), 10); m != 0 {
		t.Errorf("after clear: %d matches", m)
	}
}

// TestKernelNeedsNetAdmin: without CAP_NET_ADMIN the agent says what it
// needs and stops before it creates anything.
func TestKernelNeedsNetAdmin(t *testing.T) {
	netns.RequireRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	cmd := exec.Command(filepath.Join(bin, "aclagent"), "--socket", filepath.Join(dir, "run", "a.sock"), "--config", filepath.Join(dir, "startup-config"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "aclagent needs root (CAP_NET_ADMIN)") {
		t.Errorf("aclagent without CAP_NET_ADMIN: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "run")); err == nil {
		t.Error("the socket directory was created")
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireRoot skips when not root, except under CI=true where a skip would
// hide a missing test: there it fails.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root (CI=true: not skipping)")
	}
	t.Skip("needs root")
}

// requireFile fails (CI=true) or skips when a tool is missing.
func requireFile(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI=true: not skipping)", path)
	}
	t.Skipf("%s is missing", path)
}

func run1(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// waitFor polls until ok or the wait limit, then fails with what.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// ansibleResult is drive.py's bare paramiko channel, opened as Ansible
// network_cli opens it.
type ansibleResult struct {
	Exception          string `json:"exception"`
	First              string `json:"first"`
	FirstMatches       bool   `json:"first_matches"`
	ShowVersion        string `json:"show_version"`
	ShowVersionMatches bool   `json:"show_version_matches"`
}

// scriptedResult is `ssh host slxsh < script` (no PTY).
type scriptedResult struct {
	Exception string `json:"exception"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Status    int    `json:"status"`
}

// netmikoResult is one Netmiko session.
type netmikoResult struct {
	Exception         string `json:"exception"`
	Log               string `json:"log"`
	Prompt            string `json:"prompt"`
	Config            string `json:"config"`
	PromptAfterConfig string `json:"prompt_after_config"`
	Running           string `json:"running"`
	Version           string `json:"version"`
	Invalid           string `json:"invalid"`
	Filtered          string `json:"filtered"`
	// extreme_slx only: save_config() (copy running-config startup-config,
	// then "y" for the question) and show startup-config after it.
	Saved           string `json:"saved"`
	PromptAfterSave string `json:"prompt_after_save"`
	Startup         string `json:"startup"`
}

// nsSeq numbers the namespaces of this test process.
var nsSeq int

// sshRig is sshd in a network namespace of the test's own, on
// 127.0.0.1:2222 with key authentication for root only.
type sshRig struct {
	dir, ns string
}

func newSSHRig(t *testing.T) *sshRig {
	t.Helper()
	requireRoot(t)
	for _, f := range []string{"/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/python3", "/usr/sbin/ip"} {
		requireFile(t, f)
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import netmiko").Run(); err != nil {
		requireFile(t, "/usr/lib/python3/dist-packages/netmiko") // skips or fails with a clear name
	}
	nsSeq++
	r := &sshRig{dir: t.TempDir(), ns: fmt.Sprintf("slxsh-ssh-%d-%d", os.Getpid(), nsSeq)}
	run1(t, "ip", "netns", "add", r.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", r.ns).Run() })
	run1(t, "ip", "-n", r.ns, "link", "set", "lo", "up")
	return r
}

// startSSHD starts sshd with forceCommand as every session's command.
func (r *sshRig) startSSHD(t *testing.T, forceCommand string) {
	t.Helper()
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		t.Fatal(err)
	}
	run1(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(r.dir, "hostkey"))
	run1(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(r.dir, "userkey"))
	pub, err := os.ReadFile(filepath.Join(r.dir, "userkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`Port 2222
ListenAddress 127.0.0.1
HostKey %[1]s/hostkey
PidFile %[1]s/sshd.pid
AuthorizedKeysFile %[1]s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowUsers root
ForceCommand %[2]s
`, r.dir, forceCommand)
	confPath := filepath.Join(r.dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(r.dir, "sshd.log")
	sshd := exec.Command("ip", "netns", "exec", r.ns, "/usr/sbin/sshd", "-D", "-E", logPath, "-f", confPath)
	if err := sshd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sshd.Process.Kill()
		sshd.Wait()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("sshd log:\n%s", log)
		}
	})
	waitFor(t, "sshd to listen", func() bool {
		log, _ := os.ReadFile(logPath)
		return bytes.Contains(log, []byte("Server listening on 127.0.0.1 port 2222"))
	})
}

// drive runs testdata/ssh/drive.py in the namespace and returns its report
// by section.
func (r *sshRig) drive(t *testing.T, mode string) map[string]json.RawMessage {
	t.Helper()
	drive, err := filepath.Abs("../../testdata/ssh/drive.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", r.ns, "/usr/bin/python3", drive,
		"127.0.0.1", "2222", "root", filepath.Join(r.dir, "userkey"), r.dir, mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drive.py: %v\n%s", err, stderr.String())
	}
	if testing.Verbose() {
		t.Logf("drive.py report: %s", out)
		for _, dt := range []string{"cisco_ios", "extreme_slx"} {
			if log, err := os.ReadFile(filepath.Join(r.dir, dt+".log")); err == nil {
				t.Logf("%s session log: %q", dt, log)
			}
		}
	}
	var rep map[string]json.RawMessage
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("drive.py output: %v\n%s", err, out)
	}
	return rep
}

func section[T any](t *testing.T, rep map[string]json.RawMessage, name string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rep[name], &v); err != nil {
		t.Fatalf("report section %s: %v", name, err)
	}
	return v
}

// TestKernelSSHAutomation runs sshd with `slxsh --offline` as its
// ForceCommand and drives it with Netmiko (cisco_ios and extreme_slx), with
// a bare paramiko channel as Ansible network_cli opens it, and with scripts
// on stdin without a PTY.
func TestKernelSSHAutomation(t *testing.T) {
	r := newSSHRig(t)
	r.startSSHD(t, slxshBin+" --offline")
	rep := r.drive(t, "offline")
	host := hostName(t)
	for _, dt := range []string{"cisco_ios", "extreme_slx"} {
		res := section[netmikoResult](t, rep, dt)
		t.Run(dt, func(t *testing.T) { checkNetmiko(t, host, res) })
	}
	t.Run("extreme_slx_save_config", func(t *testing.T) {
		checkSaveConfig(t, host, section[netmikoResult](t, rep, "extreme_slx"))
	})
	t.Run("ansible_like", func(t *testing.T) { checkAnsibleLike(t, host, section[ansibleResult](t, rep, "ansible_like")) })
	t.Run("scripted", func(t *testing.T) {
		ok, bad := section[scriptedResult](t, rep, "scripted_ok"), section[scriptedResult](t, rep, "scripted_bad")
		checkScripted(t, host, ok, bad)
	})
}

// startAgent builds aclagent and runs it in the rig's namespace with mgmt
// as management 0 and its startup-config in the rig's directory; it
// returns the socket.
func (r *sshRig) startAgent(t *testing.T, mgmt string) string {
	t.Helper()
	agentBin := filepath.Join(r.dir, "aclagent")
	if out, err := exec.Command("go", "build", "-o", agentBin, "../aclagent").CombinedOutput(); err != nil {
		t.Fatalf("build aclagent: %v\n%s", err, out)
	}
	sock := filepath.Join(r.dir, "aclagent.sock")
	logPath := filepath.Join(r.dir, "aclagent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	agent := exec.Command("ip", "netns", "exec", r.ns, agentBin, "--socket", sock,
		"--config", filepath.Join(r.dir, "startup-config"), "--mgmt-interface", mgmt)
	agent.Stdout, agent.Stderr = logf, logf
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
		logf.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("aclagent log:\n%s", log)
		}
	})
	waitFor(t, "aclagent's socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil
	})
	return sock
}

// TestKernelSSHAgent is the same over SSH with aclagent behind slxsh: the
// configuration Netmiko sends reaches the kernel of the namespace, and a
// later SSH session sees it.
func TestKernelSSHAgent(t *testing.T) {
	r := newSSHRig(t)
	run1(t, "ip", "-n", r.ns, "link", "add", "mgmt0", "type", "veth", "peer", "name", "mgmt1")
	run1(t, "ip", "-n", r.ns, "link", "set", "mgmt0", "up")
	sock := r.startAgent(t, "mgmt0")
	r.startSSHD(t, slxshBin+" --socket "+sock)

	rep := r.drive(t, "agent")
	host := hostName(t)
	t.Run("cisco_ios", func(t *testing.T) { checkNetmiko(t, host, section[netmikoResult](t, rep, "cisco_ios")) })
	t.Run("extreme_slx_save_config", func(t *testing.T) {
		checkSaveConfig(t, host, section[netmikoResult](t, rep, "extreme_slx"))
		saved, err := os.ReadFile(filepath.Join(r.dir, "startup-config"))
		if err != nil {
			t.Fatalf("aclagent's startup-config: %v", err)
		}
		for _, w := range slxExampleRunning {
			wantContains(t, "aclagent's startup-config file", string(saved), w)
		}
	})
	t.Run("ansible_like", func(t *testing.T) { checkAnsibleLike(t, host, section[ansibleResult](t, rep, "ansible_like")) })
	t.Run("scripted", func(t *testing.T) {
		// scripted_ok only shows the running-config, from a new session.
		ok, bad := section[scriptedResult](t, rep, "scripted_ok"), section[scriptedResult](t, rep, "scripted_bad")
		checkScripted(t, host, ok, bad)
	})
	t.Run("non_admin", func(t *testing.T) { checkNonAdmin(t, host, sock) })
	t.Run("kernel", func(t *testing.T) {
		out, err := exec.Command("ip", "netns", "exec", r.ns, "nft", "list", "table", "inet", "slxsh").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list table inet slxsh: %v\n%s", err, out)
		}
		wantContains(t, "ruleset", string(out), "acl=check", "10.24.12.107", `"mgmt0"`)
	})
}

func checkNetmiko(t *testing.T, host string, r netmikoResult) {
	t.Helper()
	if r.Exception != "" {
		t.Fatal(r.Exception)
	}
	if r.Prompt != host+"#" || r.PromptAfterConfig != host+"#" {
		t.Errorf("prompts %q, %q; want %q", r.Prompt, r.PromptAfterConfig, host+"#")
	}
	wantContains(t, "send_config_set", r.Config, host+"(config)#", host+"(conf-ipacl-ext)#", host+"(config-Management-0)#")
	if strings.Contains(r.Config, "%") {
		t.Errorf("send_config_set gave an error:\n%s", r.Config)
	}
	for _, w := range slxExampleRunning {
		wantContains(t, "show running-config", r.Running, w)
	}
	if !strings.HasPrefix(r.Invalid, "%") && !strings.Contains(r.Invalid, "\n%") {
		t.Errorf("an invalid command gave no %% error: %q", r.Invalid)
	}
	if strings.TrimSpace(r.Version) == "" {
		t.Errorf("show version is empty")
	}
	if got, want := strings.TrimSpace(r.Filtered), "seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3"; got != want {
		t.Errorf("show running-config | include seq = %q, want %q", got, want)
	}
	for name, s := range map[string]string{"config": r.Config, "running": r.Running, "version": r.Version, "invalid": r.Invalid} {
		if strings.ContainsAny(s, "\x1b\b") {
			t.Errorf("%s output contains control sequences: %q", name, s)
		}
	}
	log, err := os.ReadFile(r.Log)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.ContainsAny(log, "\x1b\b") {
		t.Errorf("the session's raw bytes contain ESC or BS: %q", log)
	}
}

// checkNonAdmin runs slxsh on a terminal as nobody (not root, not in the
// admin group) against the agent at sock: configure terminal itself says
// permission denied and the shell stays in exec mode; show still works.
func checkNonAdmin(t *testing.T, host, sock string) {
	t.Helper()
	// nobody must reach the binary and the socket in the tests' own dirs.
	for _, d := range []string{filepath.Dir(slxshBin), filepath.Dir(sock), filepath.Dir(filepath.Dir(sock))} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(slxshBin, "--socket", sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	s := startPTYCmd(t, cmd)
	s.expect(host + "# ")
	s.send("configure terminal\r")
	if got := s.expect(host + "# "); got != "configure terminal\r\n% Error: permission denied\r\n"+host+"# " {
		t.Errorf("configure terminal as nobody: %q", got)
	}
	s.send("show running-config | include connlimit\r")
	wantContains(t, "show running-config as nobody", s.expect(host+"# "), "connlimit 3\r\n")
}

// checkSaveConfig checks Netmiko's extreme_slx save_config(): the question
// was asked and answered, no error, and show startup-config after it has
// the configuration.
func checkSaveConfig(t *testing.T, host string, r netmikoResult) {
	t.Helper()
	if r.Exception != "" {
		t.Fatal(r.Exception)
	}
	if strings.Contains(r.Saved, "%") || !strings.Contains(r.Saved, "[y/n]:") {
		t.Errorf("save_config output %q: want the question and no %% error", r.Saved)
	}
	if r.PromptAfterSave != host+"#" {
		t.Errorf("prompt after save_config %q, want %q", r.PromptAfterSave, host+"#")
	}
	for _, w := range slxExampleRunning {
		wantContains(t, "show startup-config after save_config", r.Startup, w)
	}
}

func checkAnsibleLike(t *testing.T, host string, a ansibleResult) {
	t.Helper()
	if a.Exception != "" {
		t.Fatal(a.Exception)
	}
	if want := "\r\n" + host + "# "; a.First != want {
		t.Errorf("first bytes = %q, want %q", a.First, want)
	}
	if !a.FirstMatches || !a.ShowVersionMatches {
		t.Errorf("Ansible's prompt pattern did not match: first %q, show version %q", a.First, a.ShowVersion)
	}
	if !strings.HasPrefix(a.ShowVersion, "show version\r\n") {
		t.Errorf("show version is not echoed plainly: %q", a.ShowVersion)
	}
	if strings.ContainsAny(a.ShowVersion, "\x1b\b") {
		t.Errorf("control sequences in show version: %q", a.ShowVersion)
	}
}

func checkScripted(t *testing.T, host string, ok, bad scriptedResult) {
	t.Helper()
	if ok.Exception != "" || bad.Exception != "" {
		t.Fatal(ok.Exception, bad.Exception)
	}
	if ok.Status != 0 {
		t.Errorf("good script: exit %d, stderr %q", ok.Status, ok.Stderr)
	}
	for _, w := range slxExampleRunning {
		wantContains(t, "good script", ok.Stdout, w)
	}
	if strings.Contains(ok.Stdout, host+"#") || strings.ContainsAny(ok.Stdout, "\x1b\r") {
		t.Errorf("good script output has prompts or terminal bytes: %q", ok.Stdout)
	}
	if bad.Status == 0 {
		t.Errorf("bad script: exit 0")
	}
	wantContains(t, "bad script", bad.Stdout, "<stdin>:3: % Invalid input")
}

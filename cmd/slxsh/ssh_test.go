package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// sshReport is what testdata/ssh/drive.py prints.
type sshReport struct {
	Netmiko     map[string]netmikoResult
	AnsibleLike struct {
		Exception          string `json:"exception"`
		First              string `json:"first"`
		FirstMatches       bool   `json:"first_matches"`
		ShowVersion        string `json:"show_version"`
		ShowVersionMatches bool   `json:"show_version_matches"`
	}
}

type scriptedResult struct {
	Exception string `json:"exception"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Status    int    `json:"status"`
}

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
}

// TestKernelSSHAutomation runs sshd with slxsh as its ForceCommand in a
// network namespace of its own and drives it with Netmiko (cisco_ios and
// extreme_slx) and with a bare paramiko channel as Ansible network_cli
// opens it.
func TestKernelSSHAutomation(t *testing.T) {
	requireRoot(t)
	for _, f := range []string{"/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/python3", "/usr/sbin/ip"} {
		requireFile(t, f)
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import netmiko").Run(); err != nil {
		requireFile(t, "/usr/lib/python3/dist-packages/netmiko") // skips or fails with a clear name
	}
	dir := t.TempDir()
	ns := startSSHD(t, dir)

	drive, err := filepath.Abs("../../testdata/ssh/drive.py")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, "/usr/bin/python3", drive,
		"127.0.0.1", "2222", "root", filepath.Join(dir, "userkey"), dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("drive.py: %v\n%s", err, stderr.String())
	}
	if testing.Verbose() {
		t.Logf("drive.py report: %s", out)
		for _, dt := range []string{"cisco_ios", "extreme_slx"} {
			log, _ := os.ReadFile(filepath.Join(dir, dt+".log"))
			t.Logf("%s session log: %q", dt, log)
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("drive.py output: %v\n%s", err, out)
	}
	rep := sshReport{Netmiko: map[string]netmikoResult{}}
	for _, dt := range []string{"cisco_ios", "extreme_slx"} {
		var r netmikoResult
		if err := json.Unmarshal(raw[dt], &r); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		rep.Netmiko[dt] = r
	}
	if err := json.Unmarshal(raw["ansible_like"], &rep.AnsibleLike); err != nil {
		t.Fatal(err)
	}

	scripted := map[string]scriptedResult{}
	for _, name := range []string{"scripted_ok", "scripted_bad"} {
		var r scriptedResult
		if err := json.Unmarshal(raw[name], &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		scripted[name] = r
	}
	t.Run("scripted", func(t *testing.T) {
		ok, bad := scripted["scripted_ok"], scripted["scripted_bad"]
		if ok.Exception != "" || bad.Exception != "" {
			t.Fatal(ok.Exception, bad.Exception)
		}
		if ok.Status != 0 {
			t.Errorf("good script: exit %d, stderr %q", ok.Status, ok.Stderr)
		}
		for _, w := range slxExampleRunning {
			wantContains(t, "good script", ok.Stdout, w)
		}
		if strings.Contains(ok.Stdout, hostName(t)+"#") || strings.ContainsAny(ok.Stdout, "\x1b\r") {
			t.Errorf("good script output has prompts or terminal bytes: %q", ok.Stdout)
		}
		if bad.Status == 0 {
			t.Errorf("bad script: exit 0")
		}
		wantContains(t, "bad script", bad.Stdout, "<stdin>:3: % Invalid input")
	})

	host := hostName(t)
	for dt, r := range rep.Netmiko {
		t.Run(dt, func(t *testing.T) { checkNetmiko(t, host, r) })
	}
	t.Run("ansible_like", func(t *testing.T) {
		a := rep.AnsibleLike
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
	})
}

func checkNetmiko(t *testing.T, host string, r netmikoResult) {
	if r.Exception != "" {
		t.Fatal(r.Exception)
	}
	if r.Prompt != host+"#" || r.PromptAfterConfig != host+"#" {
		t.Errorf("prompts %q, %q; want %q", r.Prompt, r.PromptAfterConfig, host+"#")
	}
	wantContains(t, "send_config_set", r.Config, host+"(config)#", host+"(conf-ipacl-ext)#", host+"(config-Management-0)#")
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

// startSSHD creates a network namespace with loopback up and starts sshd in
// it on 127.0.0.1:2222, key authentication for root only, with the built
// slxsh as ForceCommand. Everything is removed at cleanup.
func startSSHD(t *testing.T, dir string) string {
	t.Helper()
	ns := fmt.Sprintf("slxsh-ssh-%d", os.Getpid())
	run1(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "delete", ns).Run() })
	run1(t, "ip", "-n", ns, "link", "set", "lo", "up")

	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation dir
		t.Fatal(err)
	}
	run1(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "hostkey"))
	run1(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "userkey"))
	pub, err := os.ReadFile(filepath.Join(dir, "userkey.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
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
ForceCommand %[2]s --offline
`, dir, slxshBin)
	confPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "sshd.log")
	sshd := exec.Command("ip", "netns", "exec", ns, "/usr/sbin/sshd", "-D", "-E", logPath, "-f", confPath)
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
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(20 * time.Millisecond) {
		log, _ := os.ReadFile(logPath)
		if bytes.Contains(log, []byte("Server listening on 127.0.0.1 port 2222")) {
			return ns
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start:\n%s", log)
		}
	}
}

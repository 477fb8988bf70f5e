package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
)

// automationRig is sshd with `slxsh --socket AGENT` as its ForceCommand
// in the server namespace of a netns.Pair, with aclagent there (management
// 0 is s0, the server's side of the pair), and a TCP service on
// 10.0.0.2:9000 that the client namespace connects to.
type automationRig struct {
	*sshRig
	pair   *netns.Pair
	server *netns.Server
}

func newAutomationRig(t *testing.T) *automationRig {
	t.Helper()
	requireRoot(t)
	for _, f := range []string{"/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/python3", "/usr/sbin/ip", "/usr/bin/ssh", "/usr/bin/ansible-playbook"} {
		requireFile(t, f)
	}
	p := netns.NewPair(t)
	r := &automationRig{sshRig: &sshRig{dir: t.TempDir(), ns: p.Server.Name}, pair: p}
	sock := r.startAgent(t, "s0")
	r.startSSHD(t, slxshBin+" --socket "+sock)
	r.server = p.Server.Listen(t, netns.PairServer4+":9000")
	return r
}

// ansibleRun is what the json callback of ansible-playbook reports.
type ansibleRun struct {
	Plays []struct {
		Tasks []struct {
			Task struct {
				Name string `json:"name"`
			} `json:"task"`
			Hosts map[string]ansibleTask `json:"hosts"`
		} `json:"tasks"`
	} `json:"plays"`
	Stats map[string]struct {
		Changed     int `json:"changed"`
		Failures    int `json:"failures"`
		Ignored     int `json:"ignored"`
		Unreachable int `json:"unreachable"`
	} `json:"stats"`
}

// ansibleTask is one task's result on the host.
type ansibleTask struct {
	Changed  bool            `json:"changed"`
	Failed   bool            `json:"failed"`
	Msg      string          `json:"msg"`
	Stderr   string          `json:"module_stderr"`
	Commands []string        `json:"commands"`
	Stdout   []string        `json:"stdout"`
	Facts    json.RawMessage `json:"ansible_facts"`
}

// task returns the result of the task called name.
func (a *ansibleRun) task(t *testing.T, name string) ansibleTask {
	t.Helper()
	for _, p := range a.Plays {
		for _, tk := range p.Tasks {
			if tk.Task.Name == name {
				return tk.Hosts["lab"]
			}
		}
	}
	t.Fatalf("no task %q in the playbook's report", name)
	return ansibleTask{}
}

// playbook copies testdata/ssh/ansible (the files of AUTOMATION.md) into a
// directory of its own, with an inventory that points its host at the
// rig's sshd, and returns that directory.
func (r *automationRig) playbook(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(r.dir, "ansible")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"site.yml", "ios.yml", "bind.cfg", "ansible.cfg", "inventory.ini"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/ssh/ansible", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "inventory.ini" {
			// The documented inventory, with the host line of this rig.
			host := fmt.Sprintf("lab ansible_host=127.0.0.1 ansible_port=2222 ansible_user=root ansible_ssh_private_key_file=%s", filepath.Join(r.dir, "userkey"))
			data = []byte(strings.Replace(string(data), "edge1 ansible_host=192.0.2.10 ansible_user=netops", host, 1))
			if !strings.Contains(string(data), host) {
				t.Fatal("inventory.ini has no edge1 line to replace")
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runPlaybook runs ansible-playbook PLAYBOOK in the server namespace and
// returns its json report.
func (r *automationRig) runPlaybook(t *testing.T, dir, playbook string) *ansibleRun {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", r.ns, "ansible-playbook", playbook)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "LC_ALL=C.UTF-8", "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
		"ANSIBLE_PERSISTENT_LOG_MESSAGES=True", "ANSIBLE_LOG_PATH="+filepath.Join(dir, "ansible.log"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var rep ansibleRun
	if jerr := json.Unmarshal(stdout.Bytes(), &rep); jerr != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "ansible.log"))
		t.Fatalf("ansible-playbook: %v, report: %v\nstdout:\n%s\nstderr:\n%s\nlog:\n%s", err, jerr, stdout.String(), stderr.String(), log)
	}
	if testing.Verbose() {
		t.Logf("ansible-playbook report:\n%s", stdout.String())
	}
	return &rep
}

// ssh runs `ssh host COMMAND` (OpenSSH, no PTY) against the rig and
// returns the output (stdout and stderr) and the exit status.
func (r *automationRig) ssh(t *testing.T, command string) (string, int) {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", r.ns, "ssh", "-p", "2222", "-i", filepath.Join(r.dir, "userkey"),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
		"root@127.0.0.1", command)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return string(out), 0
}

// TestKernelSSHAnsible runs the playbook of AUTOMATION.md (Debian's
// ansible, community.network slxos modules, network_cli) twice against
// slxsh as sshd's ForceCommand in front of a real aclagent: the first run
// changes and saves, the second finds nothing to change; the bad line
// fails its task both times and the tasks after it work; facts of every
// subset are read; the ACL pushed is enforced on real connections.
func TestKernelSSHAnsible(t *testing.T) {
	r := newAutomationRig(t)
	dir := r.playbook(t)

	first := r.runPlaybook(t, dir, "site.yml")
	t.Run("first_run", func(t *testing.T) {
		for _, name := range []string{"ACL check, saved when the running-config differs from the startup-config",
			"Apply it inbound (from a file in running-config form)", "ACL web, pushed after its before lines when it differs"} {
			if tk := first.task(t, name); !tk.Changed || tk.Failed {
				t.Errorf("%s: changed %v, failed %v (%s); want a change", name, tk.Changed, tk.Failed, tk.Msg)
			}
		}
		if web := first.task(t, "ACL web, pushed after its before lines when it differs"); len(web.Commands) == 0 || web.Commands[0] != "connlimit existing-sessions keep" {
			t.Errorf("web: commands %q, want the before line first", web.Commands)
		}
		checkAnsibleCommon(t, first)
		if tk := first.task(t, "Back up the running-config"); !tk.Changed {
			t.Errorf("first backup: not a change")
		}
		backup, err := os.ReadFile(filepath.Join(dir, "backup", "lab.cfg"))
		if err != nil || !strings.Contains(string(backup), "ip access-list extended web") {
			t.Errorf("backup file: %v\n%s", err, backup)
		}
	})
	t.Run("facts", func(t *testing.T) { checkFacts(t, first.task(t, "Facts"), "", "") })
	t.Run("saved", func(t *testing.T) {
		saved, err := os.ReadFile(filepath.Join(r.dir, "startup-config"))
		if err != nil {
			t.Fatal(err)
		}
		wantContains(t, "startup-config", string(saved),
			"ip access-list extended check\n seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 9000 connlimit 2\n seq 20 permit ip any any\n",
			"interface management 0\n ip access-group check in\n", "ip access-list extended web\n")
	})
	t.Run("enforced", func(t *testing.T) {
		c := r.pair.Client
		for i := 0; i < 2; i++ {
			c.Expect(t, netns.PairClient4, netns.PairServer4+":9000", netns.Connected)
		}
		c.Expect(t, netns.PairClient4, netns.PairServer4+":9000", netns.Reset) // connlimit 2
	})

	t.Run("ssh_command", func(t *testing.T) {
		out, code := r.ssh(t, "show access-list ip check")
		if code != 0 || !strings.HasPrefix(out, "ip access-list extended check\n seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 9000 connlimit 2 (") {
			t.Errorf("ssh host 'show access-list ip check': exit %d, output %q", code, out)
		}
		// s0 is management 0 for this agent.
		out, code = r.ssh(t, "show access-list interface s0 in | include seq 10 | count")
		if code != 0 || out != "Number of lines: 1\n" {
			t.Errorf("show access-list interface s0 in: exit %d, output %q", code, out)
		}
		out, code = r.ssh(t, "show access-list ip check | include seq 20; show bogus")
		if code == 0 || out != " seq 20 permit ip any any (0 matches, 0 refused)\n<command>:2: show bogus\n"+strings.Repeat(" ", len("<command>:2: show "))+"^\n<command>:2: % Invalid input detected at '^' marker.\n" {
			t.Errorf("ssh host 'show ...; show bogus': exit %d, output %q; want the first output, the error once and a failure", code, out)
		}
	})

	second := r.runPlaybook(t, dir, "site.yml")
	t.Run("second_run", func(t *testing.T) {
		for _, p := range second.Plays {
			for _, tk := range p.Tasks {
				if h := tk.Hosts["lab"]; h.Changed {
					t.Errorf("second run: %q changed (commands %q)", tk.Task.Name, h.Commands)
				}
			}
		}
		if st := second.Stats["lab"]; st.Changed != 0 {
			t.Errorf("second run: %d changes", st.Changed)
		}
		checkAnsibleCommon(t, second)
	})
	// The config subset is empty on a first run (an empty running-config).
	t.Run("facts_config", func(t *testing.T) {
		checkFacts(t, second.task(t, "Facts"), "ip access-list extended check\n seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 9000 connlimit 2\n", "lab1")
	})
}

// TestKernelSSHAnsibleIOS runs testdata/ssh/ansible/ios.yml (Ansible's
// cisco.ios modules, as an IOS user's playbook) twice: the first run
// changes and saves (ios_config's save sends copy running-config
// startup-config and then Enter, which must not hang on slxsh's
// question), the second changes nothing; the ACL is enforced.
func TestKernelSSHAnsibleIOS(t *testing.T) {
	r := newAutomationRig(t)
	dir := r.playbook(t)
	first := r.runPlaybook(t, dir, "ios.yml")
	for _, name := range []string{"ACL ssh, saved when it changed", "Apply it inbound"} {
		if tk := first.task(t, name); !tk.Changed || tk.Failed {
			t.Errorf("first run, %s: changed %v, failed %v (%s %s); want a change", name, tk.Changed, tk.Failed, tk.Msg, tk.Stderr)
		}
	}
	if tk := first.task(t, "Read it back"); tk.Failed {
		t.Errorf("ios_command: %s", tk.Msg)
	}
	saved, err := os.ReadFile(filepath.Join(r.dir, "startup-config"))
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, "startup-config", string(saved),
		"ip access-list extended ssh\n seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 9000 connlimit 1\n seq 20 permit ip any any\n",
		"interface management 0\n ip access-group ssh in\n")
	c := r.pair.Client
	c.Expect(t, netns.PairClient4, netns.PairServer4+":9000", netns.Connected)
	c.Expect(t, netns.PairClient4, netns.PairServer4+":9000", netns.Reset) // connlimit 1

	second := r.runPlaybook(t, dir, "ios.yml")
	if st := second.Stats["lab"]; st.Changed != 0 || st.Failures != 0 || st.Unreachable != 0 {
		t.Errorf("second run: %+v, want no change and no failure", st)
	}
}

// checkAnsibleCommon checks what holds on both runs: the respelled entry
// is sent and accepted, the bad line fails its task with slxsh's error,
// the command task after it works, and nothing else fails.
func checkAnsibleCommon(t *testing.T, run *ansibleRun) {
	t.Helper()
	if tk := run.task(t, "The same entry in another spelling is re-sent and changes nothing"); tk.Failed || len(tk.Commands) != 2 {
		t.Errorf("respelled entry: failed %v (%s), commands %q; want sent (parent and line) and accepted", tk.Failed, tk.Msg, tk.Commands)
	}
	bad := run.task(t, "A bad line fails its task")
	if !bad.Failed || !strings.Contains(bad.Stderr, "seq 30 permit tcp any any bogus\r\n") || !strings.Contains(bad.Stderr, "% Invalid input detected") {
		t.Errorf("bad line: failed %v, msg %q, stderr %q; want slxsh's invalid input error", bad.Failed, bad.Msg, bad.Stderr)
	}
	cmd := run.task(t, "The connection still works after it")
	if cmd.Failed || len(cmd.Stdout) != 2 || !strings.Contains(cmd.Stdout[0], "seq 10 permit tcp host 10.0.0.1") {
		t.Errorf("command after the bad line: failed %v (%s), stdout %q", cmd.Failed, cmd.Msg, cmd.Stdout)
	}
	st := run.Stats["lab"]
	if st.Failures != 0 || st.Unreachable != 0 || st.Ignored != 1 {
		t.Errorf("stats %+v: want only the bad line's failure (ignored)", st)
	}
}

// checkFacts checks slxos_facts with gather_subset all; the config fact
// must contain config, the hostname fact be hostname.
func checkFacts(t *testing.T, tk ansibleTask, config, hostname string) {
	t.Helper()
	if tk.Failed {
		t.Fatalf("slxos_facts failed: %s", tk.Msg)
	}
	var f struct {
		Version    string   `json:"ansible_net_version"`
		Hostname   string   `json:"ansible_net_hostname"`
		Model      string   `json:"ansible_net_model"`
		Serial     string   `json:"ansible_net_serialnum"`
		MemTotal   int      `json:"ansible_net_memtotal_mb"`
		MemFree    int      `json:"ansible_net_memfree_mb"`
		Config     string   `json:"ansible_net_config"`
		AllIPv4    []string `json:"ansible_net_all_ipv4_addresses"`
		AllIPv6    []string `json:"ansible_net_all_ipv6_addresses"`
		Interfaces map[string]struct {
			Operstatus string `json:"operstatus"`
			MTU        int    `json:"mtu"`
			IPv4       []struct {
				Address string `json:"address"`
				Subnet  string `json:"subnet"`
			} `json:"ipv4"`
		} `json:"ansible_net_interfaces"`
	}
	if err := json.Unmarshal(tk.Facts, &f); err != nil {
		t.Fatalf("facts: %v\n%s", err, tk.Facts)
	}
	if f.Version != cli.Version || f.Model != "Linux-"+runtime.GOARCH || f.Serial == "" {
		t.Errorf("version %q, model %q, serial %q", f.Version, f.Model, f.Serial)
	}
	if f.MemTotal <= 0 || f.MemFree <= 0 || f.MemFree > f.MemTotal {
		t.Errorf("memory: total %d MB, free %d MB", f.MemTotal, f.MemFree)
	}
	mgmt, ok := f.Interfaces["Management 0"]
	if !ok || mgmt.Operstatus != "up" || len(mgmt.IPv4) == 0 || mgmt.IPv4[0].Address != netns.PairServer4 || mgmt.IPv4[0].Subnet != "24" {
		t.Errorf("interface Management 0 (s0): %+v (all: %v)", mgmt, f.Interfaces)
	}
	if !contains(f.AllIPv4, netns.PairServer4) || !contains(f.AllIPv6, netns.PairServer6) {
		t.Errorf("addresses: %v, %v", f.AllIPv4, f.AllIPv6)
	}
	if f.Hostname != hostname {
		t.Errorf("hostname fact %q, want %q", f.Hostname, hostname)
	}
	if !strings.Contains(f.Config, config) {
		t.Errorf("config fact %q does not contain %q", f.Config, config)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestKernelSSHNetmiko runs testdata/ssh/netmiko/push.py (AUTOMATION.md's
// Netmiko example, extreme_slx) against slxsh as ForceCommand in front of
// aclagent: send_config_from_file twice (the second changes nothing and
// gives no error), save_config, show commands with pipes.
func TestKernelSSHNetmiko(t *testing.T) {
	r := newAutomationRig(t)
	if err := exec.Command("/usr/bin/python3", "-c", "import netmiko").Run(); err != nil {
		requireFile(t, "/usr/lib/python3/dist-packages/netmiko")
	}
	push, _ := filepath.Abs("../../testdata/ssh/netmiko/push.py")
	cfg, _ := filepath.Abs("../../testdata/ssh/netmiko/acl.cfg")
	cmd := exec.Command("ip", "netns", "exec", r.ns, "/usr/bin/python3", push, cfg)
	cmd.Env = append(os.Environ(), "SLX_HOST=127.0.0.1", "SLX_PORT=2222", "SLX_USER=root", "SLX_KEY="+filepath.Join(r.dir, "userkey"))
	out, err := cmd.CombinedOutput()
	if testing.Verbose() {
		t.Logf("push.py:\n%s", out)
	}
	if err != nil {
		t.Fatalf("push.py: %v\n%s", err, out)
	}
	sections := map[string]string{}
	for _, s := range strings.Split(string(out), "--- ")[1:] {
		name, body, _ := strings.Cut(s, "\n")
		sections[name] = body
	}
	host := hostName(t)
	for _, run := range []string{"first push", "second push"} {
		wantContains(t, run, sections[run], host+"(conf-ipacl-ext)#", "permit ip any any")
		if strings.Contains(sections[run], "%") {
			t.Errorf("%s gave an error:\n%s", run, sections[run])
		}
	}
	if s := sections["save"]; !strings.Contains(s, "Do you want to continue? [y/n]:") || strings.Contains(s, "%") {
		t.Errorf("save_config: %q", s)
	}
	if got := strings.TrimSpace(sections["count"]); got != "Number of lines: 3" {
		t.Errorf("show running-config | include seq | count = %q; want 3 (the file twice is the file once)", got)
	}
	if got := strings.TrimSpace(sections["files"]); got != "seq 20 permit tcp host 10.0.0.1 host 10.0.0.2 eq 9001 connlimit 1 (0 matches, 0 refused, 0 at limit)" {
		t.Errorf("show access-list ip files | include \"eq 9001\" = %q", got)
	}
	saved, err := os.ReadFile(filepath.Join(r.dir, "startup-config"))
	if err != nil || !strings.Contains(string(saved), " seq 10 remark pushed by Netmiko from a config file\n") {
		t.Errorf("startup-config after save_config: %v\n%s", err, saved)
	}
}

// TestAutomationDocShowsTestedFiles: AUTOMATION.md shows the Ansible and
// Netmiko files that TestKernelSSHAnsible and TestKernelSSHNetmiko run, as
// they are.
func TestAutomationDocShowsTestedFiles(t *testing.T) {
	doc, err := os.ReadFile("AUTOMATION.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ansible/ansible.cfg", "ansible/inventory.ini", "ansible/site.yml", "ansible/bind.cfg", "netmiko/push.py", "netmiko/acl.cfg"} {
		data, err := os.ReadFile(filepath.Join("../../testdata/ssh", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(doc, data) {
			t.Errorf("AUTOMATION.md does not show testdata/ssh/%s as it is", f)
		}
	}
}

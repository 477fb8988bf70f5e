package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/agent"
	"github.com/slxsh/slxsh/internal/nft"
)

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte(`ip access-list extended check
 seq 10 permit tcp host 10.24.12.107 host 10.24.12.129 eq 22 connlimit 3
!
interface management 0
 ip access-group check in
`), 0o644)
	var out, errb bytes.Buffer
	if code := run([]string{"--check", good, "--mgmt-interface", "eth7", "--table", "t1"}, &out, &errb); code != 0 {
		t.Fatalf("--check of a good config: exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"table inet t1 {", `iifname "eth7"`, "ct count over 3", `comment "acl=check dir=in seq=10"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--check output lacks %q:\n%s", want, out.String())
		}
	}

	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("ip access-list extended check\n seq 10 permit tcp any any eq 22\n seq 20 permit tcp any any eq 99999\n"), 0o644)
	out.Reset()
	errb.Reset()
	if code := run([]string{"--check", bad}, &out, &errb); code == 0 {
		t.Fatalf("--check of a bad config succeeded:\n%s", out.String())
	}
	if !strings.HasPrefix(errb.String(), bad+":3: % Invalid input detected at '^' marker.\n seq 20 permit tcp any any eq 99999\n") || out.Len() != 0 {
		t.Errorf("--check error output: %q, stdout %q", errb.String(), out.String())
	}
}

func TestFlags(t *testing.T) {
	t.Setenv("SLXSH_SOCKET", "/tmp/x/env.sock")
	f, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.socket != "/tmp/x/env.sock" || f.state != "/tmp/x/running-config" || f.table != "slxsh" || f.adminGroup != "slxsh" || f.config != "/etc/slxsh/startup-config" {
		t.Errorf("defaults: %+v", f)
	}
	f, err = parseFlags([]string{"--socket", "/s/a.sock", "--interface-map", "ethernet0/1=eth1"})
	if err != nil || f.socket != "/s/a.sock" {
		t.Fatalf("%+v %v", f, err)
	}
	o, err := compileOptions(f)
	if err != nil || o.InterfaceMap["0/1"] != "eth1" {
		t.Errorf("compileOptions = %+v, %v", o, err)
	}
	if o.MessagePort != 4421 || o.LogGroup != 1 {
		t.Errorf("message port %d, log group %d; want the defaults 4421, 1", o.MessagePort, o.LogGroup)
	}
	for _, args := range [][]string{{"--message-port", "0"}, {"--message-port", "65500"}, {"--log-group", "0"}, {"--log-group", "65536"}} {
		bad, err := parseFlags(args)
		if err == nil {
			_, err = compileOptions(bad)
		}
		if err == nil {
			t.Errorf("%v accepted", args)
		}
	}
	f.ifmap = "ethernet0/1"
	if _, err := compileOptions(f); err == nil {
		t.Error("bad --interface-map accepted")
	}
	if code := run([]string{"stray"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}

// TestHelp: --help prints the synopsis and every flag on stdout and exits
// 0; a bad flag prints the error and the usage on stderr and exits 2.
func TestHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || errb.Len() != 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errb.String())
	}
	help := out.String()
	for _, want := range []string{"usage: aclagent [--config FILE]", "aclagent --check FILE", "SIGHUP", "SLXSH_SOCKET"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
	newFlagSet(&flags{}).VisitAll(func(f *flag.Flag) {
		if !strings.Contains(help, "\n  --"+f.Name+" ") && !strings.Contains(help, "\n  --"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
	})
	out.Reset()
	if code := run([]string{"--no-such-flag"}, &out, &errb); code != 2 || out.Len() != 0 ||
		!strings.HasPrefix(errb.String(), "aclagent: flag provided but not defined: -no-such-flag\nusage: aclagent") {
		t.Errorf("bad flag: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

func TestHostOptions(t *testing.T) {
	o := nft.Options{Table: "t", MgmtInterface: "eth7"}
	if got := hostOptions(&flags{mgmt: "eth7"}, o)().MgmtInterface; got != "eth7" {
		t.Errorf("--mgmt-interface eth7: %q", got)
	}
	want, _ := agent.DefaultRouteInterface()
	if want == "" {
		want = "eth7" // no default route here: the value from the start stays
	}
	if got := hostOptions(&flags{}, o)().MgmtInterface; got != want {
		t.Errorf("default route: %q, want %q", got, want)
	}
	r := resolver(hostOptions(&flags{mgmt: "m0"}, nft.Options{MgmtInterface: "m0", InterfaceMap: map[string]string{"0/1": "e1"}}))
	if r(acl.IfManagement, "0") != "m0" || r(acl.IfEthernet, "0/1") != "e1" || r(acl.IfEthernet, "0/2") != "" || r(acl.IfLinux, "ens3") != "ens3" {
		t.Error("resolver maps interfaces wrongly")
	}
}

// TestCheckRefusesCutFile: --check refuses what the agent would not load
// (issue 12): a file written by write memory that lost its "end" line.
func TestCheckRefusesCutFile(t *testing.T) {
	path := "../../testdata/damaged/truncated-at-line.L5.cfg"
	var out, errb bytes.Buffer
	if code := run([]string{"--check", path, "--mgmt-interface", "lo"}, &out, &errb); code != 1 {
		t.Fatalf("--check of a cut file: exit %d:\n%s", code, out.String())
	}
	if want := path + ":5: % Error: the file ends before its \"end\" line: it was cut short (truncated), not loaded\n"; errb.String() != want {
		t.Errorf("--check error output: %q, want %q", errb.String(), want)
	}
}

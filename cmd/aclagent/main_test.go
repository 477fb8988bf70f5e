package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	f, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if f.socket != "/tmp/x/env.sock" || f.state != "/tmp/x/running-config" || f.table != "slxsh" || f.adminGroup != "slxsh" || f.config != "/etc/slxsh/startup-config" {
		t.Errorf("defaults: %+v", f)
	}
	f, err = parseFlags([]string{"--socket", "/s/a.sock", "--interface-map", "ethernet0/1=eth1"}, &bytes.Buffer{})
	if err != nil || f.socket != "/s/a.sock" {
		t.Fatalf("%+v %v", f, err)
	}
	o, err := compileOptions(f)
	if err != nil || o.InterfaceMap["0/1"] != "eth1" {
		t.Errorf("compileOptions = %+v, %v", o, err)
	}
	f.ifmap = "ethernet0/1"
	if _, err := compileOptions(f); err == nil {
		t.Error("bad --interface-map accepted")
	}
	if code := run([]string{"stray"}, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLimitSetFlags: --limit-set-size feeds nft.Options.SetSize (range
// checked; 0, the default, leaves the sets unsized), --limit-set-memory MiB feeds MaxSetMemory, by default one
// eighth of MemTotal, 0 turning the check off.
func TestLimitSetFlags(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "meminfo")
	os.WriteFile(mi, []byte("MemFree:         1000 kB\nMemTotal:       8388608 kB\n"), 0o644)
	old := meminfoPath
	meminfoPath = mi
	t.Cleanup(func() { meminfoPath = old })

	for _, c := range []struct {
		args      []string
		size      uint32
		maxMemory uint64
		err       string
	}{
		{nil, 0, 1 << 30, ""},
		{[]string{"--limit-set-size", "4096", "--limit-set-memory", "300"}, 4096, 300 << 20, ""},
		{[]string{"--limit-set-memory", "0"}, 0, 0, ""},
		{[]string{"--limit-set-size", "0"}, 0, 1 << 30, ""},
		{[]string{"--limit-set-size", "65535"}, 65535, 1 << 30, ""},
		{[]string{"--limit-set-size", "1"}, 1, 1 << 30, ""},
		{[]string{"--limit-set-size", "16777216"}, 1 << 24, 1 << 30, ""},
		{[]string{"--limit-set-size", "16777217"}, 0, 0, "--limit-set-size 16777217: want 0 to 16777216"},
		{[]string{"--limit-set-size", "-3"}, 0, 0, "--limit-set-size -3"},
		{[]string{"--limit-set-memory", "-2"}, 0, 0, "--limit-set-memory -2"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			f, err := parseFlags(append([]string{"--mgmt-interface", "eth0"}, c.args...))
			if err != nil {
				t.Fatal(err)
			}
			o, err := compileOptions(f)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || o.SetSize != c.size || o.MaxSetMemory != c.maxMemory {
				t.Errorf("SetSize %d, MaxSetMemory %d, %v; want %d, %d", o.SetSize, o.MaxSetMemory, err, c.size, c.maxMemory)
			}
		})
	}

	meminfoPath = filepath.Join(t.TempDir(), "missing")
	f, _ := parseFlags(nil)
	if _, err := compileOptions(f); err == nil || !strings.Contains(err.Error(), "--limit-set-memory") {
		t.Errorf("unreadable meminfo: %v, want an error naming --limit-set-memory", err)
	}
	f.setMemory = 10
	if _, err := compileOptions(f); err != nil {
		t.Errorf("unreadable meminfo with --limit-set-memory 10: %v", err)
	}
}

// TestCheckSetMemory: a config whose limit sets could take more kernel
// memory when full than --limit-set-memory allows is refused with the
// figure (unsized sets by default: 20 of up to 65535 keys, about 10 MiB
// each when full); --limit-set-size, a smaller cap, makes it fit.
func TestCheckSetMemory(t *testing.T) {
	var b strings.Builder
	b.WriteString("ip access-list extended big\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&b, " seq %d permit tcp any any eq %d connlimit 3\n", i*10, 1000+i)
	}
	b.WriteString("interface eth9\n ip access-group big in\n")
	conf := filepath.Join(t.TempDir(), "big.conf")
	os.WriteFile(conf, []byte(b.String()), 0o644)

	var out, errb bytes.Buffer
	code := run([]string{"--check", conf, "--mgmt-interface", "eth0", "--limit-set-memory", "100"}, &out, &errb)
	if code != 1 || out.Len() != 0 || !strings.Contains(errb.String(), "% Error: the limit sets of this configuration could take about 200 MiB of kernel memory when full") ||
		!strings.Contains(errb.String(), "more than the 100 MiB allowed") {
		t.Errorf("over --limit-set-memory: exit %d, stdout %d bytes, stderr %q", code, out.Len(), errb.String())
	}
	out.Reset()
	errb.Reset()
	code = run([]string{"--check", conf, "--mgmt-interface", "eth0", "--limit-set-memory", "100", "--limit-set-size", "1024"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "size 1024\n") {
		t.Errorf("--limit-set-size 1024: exit %d, stderr %q\n%s", code, errb.String(), out.String())
	}
}

package cli

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/acl/acltest"
)

// TestRoundTripRandom checks ParseConfig(acl.Format(c)) == c over many
// random configurations covering every option.
func TestRoundTripRandom(t *testing.T) {
	for seed := uint64(0); seed < 1000; seed++ {
		c := acltest.Random(rand.New(rand.NewPCG(seed, 7)))
		text := acl.Format(c)
		got, err := ParseConfig(text)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, text)
		}
		if d := cmp.Diff(c, got, equateNetip); d != "" {
			t.Fatalf("seed %d: config differs after the round trip (-want +got):\n%s\n%s", seed, d, text)
		}
	}
}

// TestRoundTripFiles checks that every testdata/config/*.conf is canonical:
// it parses, and formats back to the same text.
func TestRoundTripFiles(t *testing.T) {
	files, err := filepath.Glob("../../testdata/config/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 5 {
		t.Fatalf("want at least 5 configs in testdata/config, have %d", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ParseConfig(string(b))
			if err != nil {
				t.Fatal(err)
			}
			if err := acl.Validate(c); err != nil {
				t.Fatalf("parsed config does not validate: %v", err)
			}
			if got := acl.Format(c); got != string(b) {
				t.Errorf("Format(ParseConfig(file)) differs:\n%s", cmp.Diff(string(b), got))
			}
			// Through the shell: the file typed in a configure terminal block.
			s := NewSession(NewMemoryBackend(nil), "device")
			var out strings.Builder
			script := "configure terminal\n" + string(b) + "end\nshow running-config\n"
			if err := s.RunScript(strings.NewReader(script), "f", &out); err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			want := "Entering configuration mode terminal\n" + string(b)
			if out.String() != want {
				t.Errorf("show running-config after the script differs:\n%s", cmp.Diff(want, out.String()))
			}
			// Typed interactively: one transaction per line.
			s = NewSession(NewMemoryBackend(nil), "device")
			out.Reset()
			for _, l := range strings.Split("configure terminal\n"+string(b)+"end", "\n") {
				if err := s.Execute(l, &out); err != nil {
					t.Fatalf("%q: %v", l, err)
				}
			}
			out.Reset()
			if err := s.Execute("show running-config", &out); err != nil || out.String() != string(b) {
				t.Errorf("show running-config after typing the file differs (%v):\n%s", err, cmp.Diff(string(b), out.String()))
			}
		})
	}
}

// TestRoundTripAllTestdata: every other config in the repository's testdata
// (the compiler's golden inputs, which need not be canonical) typed into a
// fresh shell gives a running-config that, fed back through another fresh
// shell, gives the same running-config.
func TestRoundTripAllTestdata(t *testing.T) {
	files, err := filepath.Glob("../../internal/nft/testdata/compile/*.conf")
	if err != nil || len(files) < 10 {
		t.Fatalf("compiler configs: %v (%d files)", err, len(files))
	}
	running := func(t *testing.T, config string) string {
		t.Helper()
		s := NewSession(NewMemoryBackend(nil), "device")
		var out strings.Builder
		if err := s.RunScript(strings.NewReader("configure terminal\n"+config+"end\n"), "f", &out); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		out.Reset()
		if err := s.Execute("show running-config", &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first := running(t, string(b))
			if !strings.Contains(first, "access-list extended") {
				t.Fatalf("running-config has no ACL:\n%s", first)
			}
			if second := running(t, first); second != first {
				t.Errorf("running-config fed back differs:\n%s", cmp.Diff(first, second))
			}
		})
	}
}

var equateNetip = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestNoBeforeEveryLine: "no " before any line inside a block of a
// running-config (an entry, a remark, an access-group, a periodic or
// absolute line) removes that line, typed in the block's mode, for every
// config in testdata/config.
func TestNoBeforeEveryLine(t *testing.T) {
	files, err := filepath.Glob("../../testdata/config/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("configs: %v", err)
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		base, err := ParseConfig(string(b))
		if err != nil {
			t.Fatal(err)
		}
		context := ""
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(line, " ") {
				context = line
				continue
			}
			n++
			s := NewSession(NewMemoryBackend(base), "device")
			var out strings.Builder
			for _, l := range []string{"configure terminal", context, "no " + strings.TrimSpace(line)} {
				if err := s.Execute(l, &out); err != nil {
					t.Fatalf("%s: %q: %v\n%s", filepath.Base(f), l, err, out.String())
				}
			}
			out.Reset()
			s.Execute("do show running-config", &out)
			if strings.Contains(blockOf(out.String(), context), line+"\n") {
				t.Errorf("%s: %q still in the running-config after no", filepath.Base(f), line)
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d block lines tried", n)
	}
}

// blockOf returns the block of a running-config that starts with the line
// head, through its "!".
func blockOf(running, head string) string {
	i := strings.Index(running, head+"\n")
	if i < 0 {
		return ""
	}
	block, _, _ := strings.Cut(running[i:], "!\n")
	return block
}

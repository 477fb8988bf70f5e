package nft_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Berlin without the host's zoneinfo

	"github.com/google/go-cmp/cmp"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

var update = flag.Bool("update", false, "rewrite testdata/compile/*.nft from the compiler's output")

// goldenOptions are the host facts every golden config is compiled with.
var goldenOptions = nft.Options{
	MgmtInterface: "eth0",
	InterfaceMap:  map[string]string{"0/1": "eth1", "0/2": "eth2"},
	// Time ranges in Berlin in winter (UTC+1).
	Zone: berlin,
	Now:  time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC),
}

var berlin = func() *time.Location {
	l, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return l
}()

// goldenCase is one testdata/compile/NAME.conf with its compiled ruleset.
type goldenCase struct {
	name, confPath, nftPath string
	rs                      *nft.Ruleset
}

// loadGoldens parses and compiles every golden config.
func loadGoldens(t *testing.T) []goldenCase {
	t.Helper()
	confs, err := filepath.Glob("testdata/compile/*.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(confs) < 8 {
		t.Fatalf("want at least 8 golden configs, have %d", len(confs))
	}
	var out []goldenCase
	for _, p := range confs {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		c, err := cli.ParseConfig(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		rs, err := nft.Compile(c, goldenOptions)
		if err != nil {
			t.Fatalf("%s: compile: %v", p, err)
		}
		name := strings.TrimSuffix(filepath.Base(p), ".conf")
		out = append(out, goldenCase{name, p, strings.TrimSuffix(p, ".conf") + ".nft", rs})
	}
	return out
}

func TestCompileGolden(t *testing.T) {
	for _, g := range loadGoldens(t) {
		t.Run(g.name, func(t *testing.T) {
			got := g.rs.String()
			if *update {
				if err := os.WriteFile(g.nftPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(g.nftPath)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/nft -update)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("%s differs from the compiler's output (-want +got):\n%s", g.nftPath, d)
			}
		})
	}
}

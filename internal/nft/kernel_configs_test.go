package nft_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// TestKernelExampleConfigs compiles every testdata/config/*.conf for a
// host whose interfaces they name, applies it in a namespace and checks
// that the kernel holds it.
func TestKernelExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../testdata/config/*.conf")
	if err != nil || len(files) < 6 {
		t.Fatalf("testdata/config: %v, %d files", err, len(files))
	}
	opt := nft.Options{
		MgmtInterface: "s0",
		InterfaceMap:  map[string]string{"0/1": "eth1", "1/12": "eth12"},
		LookupUser:    func(string) (uint32, error) { return 1000, nil },
		Zone:          time.Local,
		Now:           time.Now(),
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			text, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := cli.ParseConfig(string(text))
			if err != nil {
				t.Fatal(err)
			}
			rs, err := nft.Compile(cfg, opt)
			if err != nil {
				t.Fatal(err)
			}
			ns := netns.New(t)
			mustApply(t, applier(ns), rs)
		})
	}
}

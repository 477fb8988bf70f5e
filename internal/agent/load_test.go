package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

// flagKernel is the nft fake with agent-armed flags.
type flagKernel struct {
	*nft.Fake
	flags map[string]bool
}

func (k *flagKernel) SetFlag(set string, f acl.Family, on bool) (bool, error) {
	if k.flags[set] == on {
		return false, nil
	}
	k.flags[set] = on
	return true, nil
}

func TestLoadLimitFlags(t *testing.T) {
	ta := newTestAgent(t)
	k := &flagKernel{Fake: ta.kernel, flags: map[string]bool{}}
	ta.opts.Kernel = k
	load := 2.0
	ta.opts.Load = func() (float64, error) { return load, nil }
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended busy",
		"seq 10 permit tcp any any eq 80 load-limit 1.50",
		"seq 20 permit ip any any",
		"interface management 0", "ip access-group busy in",
	}})
	set := nft.LoadSetName(nft.EntryRef{Family: acl.IPv4, ACL: "busy", Dir: acl.In, Seq: 10}, 150)
	if !k.flags[set] {
		t.Fatalf("load 2.0 over 1.50: flag of %s not set right after the apply: %v", set, k.flags)
	}
	load = 1.5
	ta.ArmLoad()
	if k.flags[set] {
		t.Error("load 1.50 is not above 1.50: flag still set")
	}
	load = 1.51
	ta.ArmLoad()
	if !k.flags[set] {
		t.Error("load 1.51: flag not set")
	}
}

func TestLoadAverageFrom(t *testing.T) {
	p := filepath.Join(t.TempDir(), "loadavg")
	os.WriteFile(p, []byte("0.42 0.30 0.20 1/123 4567\n"), 0o644)
	if got, err := LoadAverageFrom(p); err != nil || got != 0.42 {
		t.Errorf("LoadAverageFrom = %v, %v", got, err)
	}
	if _, err := LoadAverage(); err != nil {
		t.Errorf("LoadAverage: %v", err)
	}
}

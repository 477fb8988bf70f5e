package agent

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

func TestLoadLimitFlags(t *testing.T) {
	ta := newTestAgent(t)
	k := ta.kernel
	armed := func(set string) bool { _, on := k.Elements[set]["ipv4"]; return on }
	load := 2.0
	ta.opts.Load = func() (float64, error) { return load, nil }
	ta.mustConfigure(t, cli.Txn{Lines: []string{
		"ip access-list extended busy",
		"seq 10 permit tcp any any eq 80 load-limit 1.50",
		"seq 20 permit ip any any",
		"interface management 0", "ip access-group busy in",
	}})
	set := nft.LoadSetName(nft.EntryRef{Family: acl.IPv4, ACL: "busy", Dir: acl.In, Seq: 10}, 150)
	if !armed(set) {
		t.Fatalf("load 2.0 over 1.50: flag of %s not set right after the apply: %v", set, k.Elements[set])
	}
	load = 1.5
	ta.ArmLoad()
	if armed(set) {
		t.Error("load 1.50 is not above 1.50: flag still set")
	}
	load = 1.51
	ta.ArmLoad()
	if !armed(set) {
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

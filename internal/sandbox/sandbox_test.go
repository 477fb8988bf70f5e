package sandbox

import (
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
)

func TestInstructions(t *testing.T) {
	got := Instructions("/opt/slxsh/bin/slxsh")
	for _, want := range []string{
		"sudo /opt/slxsh/bin/slxsh --sandbox-connect 5",
		"sudo ip netns exec slx-client bash",
		" seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3",
		"show access-list ip check",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("instructions lack %q:\n%s", want, got)
		}
	}
	// The instructions show the startup-config the agent really runs.
	if !strings.Contains(StartupConfig, " seq 10 permit tcp host 10.0.0.1 host 10.0.0.2 eq 22 connlimit 3\n") {
		t.Errorf("startup-config:\n%s", StartupConfig)
	}
}

// TestStartupConfigIsCanonical: the sandbox's startup-config is written
// as the running-config prints it, so that show startup-config and show
// running-config agree on a fresh sandbox.
func TestStartupConfigIsCanonical(t *testing.T) {
	c, err := cli.ParseConfig(StartupConfig)
	if err != nil {
		t.Fatal(err)
	}
	if got := acl.Format(c); got != StartupConfig {
		t.Errorf("the running-config of the sandbox's startup-config differs from it:\n%s\nwant\n%s", got, StartupConfig)
	}
}

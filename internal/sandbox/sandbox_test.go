package sandbox

import (
	"strings"
	"testing"
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

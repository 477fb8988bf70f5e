package cli

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseConfig replays a 1000-entry access list.
func BenchmarkParseConfig(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("ip access-list extended big\n")
	for i := 1; i <= 1000; i++ {
		fmt.Fprintf(&sb, " seq %d permit tcp 10.%d.%d.0/24 any eq %d connlimit %d per-prefix 28 rate 10 per minute burst 5 log\n", i*10, i/256, i%256, 1000+i, i%50)
	}
	sb.WriteString("!\n")
	text := sb.String()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ParseConfig(text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExecuteEntry types one entry line in ACL mode.
func BenchmarkExecuteEntry(b *testing.B) {
	g := grammarOf(frame{kind: modeACL})
	line := "permit tcp 10.0.0.0/24 eq 1024 host 10.1.1.1 range 8000 8010 connlimit 10 per-prefix 24 rate 5 per minute burst 3 total log count"
	for b.Loop() {
		if _, err := parseLine(g, line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEntryLine parses one `slxsh -f` line of scripts/gen-acl.sh
// in an access list's mode, as the agent does for each line of a block.
func BenchmarkParseEntryLine(b *testing.B) {
	st := []frame{{kind: modeConfig}, {kind: modeACL, name: "big"}}
	line := " seq 4242 permit tcp host 10.0.16.146 any eq 5242 connlimit 3"
	for b.Loop() {
		if _, _, err := parseConfigLine(st, line); err != nil {
			b.Fatal(err)
		}
	}
}

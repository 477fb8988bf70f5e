package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
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

// genACL is the script of scripts/gen-acl.sh: one list of n entries (seq
// 1..n), every hundredth with connlimit 3, applied in on eth1.
func genACL(n int) []string {
	lines := []string{"ip access-list extended big"}
	for i := 1; i <= n; i++ {
		line := fmt.Sprintf(" seq %d permit tcp host 10.%d.%d.%d any eq %d", i, i/65536, i/256%256, i%256, 1000+i%20000)
		if i%100 == 0 {
			line += " connlimit 3"
		}
		lines = append(lines, line)
	}
	return append(lines, "interface eth1", " ip access-group big in", "end")
}

// BenchmarkApplyScript50k is the agent's parse of `slxsh -f` of a
// 50k-entry config, with the list's body parsed ahead on every core and
// in order.
func BenchmarkApplyScript50k(b *testing.B) {
	t := Txn{Lines: genACL(50000)}
	defer func() { preparsing = true }()
	for _, ahead := range []bool{true, false} {
		b.Run(map[bool]string{true: "ahead", false: "inorder"}[ahead], func(b *testing.B) {
			preparsing = ahead
			for b.Loop() {
				if _, err := ApplyLines(acl.New(), t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChange50k is one one-entry change of a 50k-entry config on the
// agent's path, but for the compiler: the lines applied, the result
// validated against the running config and formatted for the state files
// into the buffer of the last time (as installLocked and saveStateLocked
// do).
func BenchmarkChange50k(b *testing.B) {
	running, err := ApplyLines(acl.New(), Txn{Lines: genACL(50000)})
	if err != nil {
		b.Fatal(err)
	}
	if err := acl.Validate(running); err != nil {
		b.Fatal(err)
	}
	var f acl.Formatter
	state := f.Append(nil, running)
	t := Txn{Lines: []string{"ip access-list extended big", "no seq 25000", "seq 25000 permit tcp host 10.0.97.168 any eq 2071"}}
	for b.Loop() {
		next, err := ApplyLines(running, t)
		if err != nil {
			b.Fatal(err)
		}
		if err := acl.ValidateChange(running, next); err != nil {
			b.Fatal(err)
		}
		state = f.Append(state[:0], next)
	}
}

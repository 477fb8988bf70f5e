package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/slxsh/slxsh/internal/acl"
)

// TestRevertTimer checks configure terminal revert timer: without confirm
// the config returns to its state before; with confirm it stays.
func TestRevertTimer(t *testing.T) {
	for _, confirm := range []bool{false, true} {
		b := NewMemoryBackend(nil).(*memoryBackend)
		b.minute = time.Millisecond
		s := NewSession(b, "h")
		var out strings.Builder
		lines := []string{"configure terminal revert timer 20", "hostname changed", "end"}
		if confirm {
			lines = append(lines, "configure confirm")
		}
		for _, l := range lines {
			if err := s.Execute(l, &out); err != nil {
				t.Fatalf("%s: %v", l, err)
			}
		}
		// Wait (bounded) for the timer to have fired or been stopped.
		var host string
		for i := 0; i < 200; i++ {
			b.mu.Lock()
			pending := b.revert != nil
			b.mu.Unlock()
			c, _ := b.Running()
			host = c.Hostname
			if !pending {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		want := ""
		if confirm {
			want = "changed"
		}
		if host != want {
			t.Errorf("confirm=%v: hostname %q, want %q", confirm, host, want)
		}
	}
}

// overlay is a backend whose own operations answer before those of the
// backend it wraps.
type overlay struct {
	Backend
	ops Handlers[struct{}]
}

func (o overlay) Do(name string, args json.RawMessage) (json.RawMessage, error) {
	if _, ok := o.ops[name]; ok {
		return o.ops.Run(struct{}{}, name, args)
	}
	return o.Backend.Do(name, args)
}

// withOps wraps b with the operations that add declares.
func withOps(b Backend, add func(h Handlers[struct{}])) Backend {
	o := overlay{Backend: b, ops: Handlers[struct{}]{}}
	add(o.ops)
	return o
}

// agentLike answers the agent-only commands with fixed data; management 0
// is eth0.
func agentLike(b Backend) Backend {
	return withOps(b, func(h Handlers[struct{}]) {
		Handle(h, OpCounters, func(_ struct{}, ref ACLRef) ([]EntryCounters, error) {
			if ref.Name == "check6" { // applied nowhere: nothing counted, no implicit deny
				return []EntryCounters{{Seq: 10}}, nil
			}
			return []EntryCounters{{Seq: 10, Matches: 15, Refused: 2, AtLimit: 1}, {Seq: 20, Matches: 7}}, nil
		})
		Handle(h, OpSessions, func(struct{}, ACLRef) ([]SessionKey, error) {
			return []SessionKey{{Seq: 10, Key: "10.0.0.1", Sessions: 3, Limit: 3, AtLimit: true}, {Seq: 10, Key: "10.0.0.2", Sessions: 1, Limit: 3}}, nil
		})
		Handle(h, OpInterfaces, func(struct{}, NoArgs) ([]InterfaceName, error) {
			return []InterfaceName{{Kind: acl.IfManagement, Name: "0", Linux: "eth0"}}, nil
		})
	})
}

// TestShowWithCounters checks how counters and sessions from the agent are
// shown.
func TestShowWithCounters(t *testing.T) {
	base, err := ParseConfig("ip access-list extended check\n seq 10 permit tcp any any eq 22 connlimit 3\n seq 20 permit ip any any\n!\ninterface management 0\n ip access-group check in\n!\n" +
		"ipv6 access-list extended check6\n seq 10 permit tcp any any eq 22\n!\n")
	if err != nil {
		t.Fatal(err)
	}
	s := NewSession(agentLike(NewMemoryBackend(base)), "h")
	for _, tc := range []struct{ line, want string }{
		{"show access-list ip check", `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3 (15 matches, 2 refused, 1 at limit)
 seq 20 permit ip any any (7 matches, 0 refused)
`},
		{"show access-list interface management 0 in | include seq 10", " seq 10 permit tcp any any eq 22 connlimit 3 (15 matches, 2 refused, 1 at limit)\n"},
		// eth0 is management 0 for the agent.
		{"show access-list interface eth0 in | include seq 10 | count", "Number of lines: 1\n"},
		{"show access-list ip check in | section seq 20", " seq 20 permit ip any any (7 matches, 0 refused)\n"},
		// Every list, as IOS's show access-list (and access-lists) and
		// SLX-OS's show access-list ip without a name.
		{"show access-list | include access-list", "ip access-list extended check\nipv6 access-list extended check6\n"},
		{"show access-lists | include access-list", "ip access-list extended check\nipv6 access-list extended check6\n"},
		{"show access-list ip | include access-list", "ip access-list extended check\n"},
		{"show access-list ipv6 | include access-list", "ipv6 access-list extended check6\n"},
		{"show access-list ipv6 check6", "ipv6 access-list extended check6\n seq 10 permit tcp any any eq 22 (0 matches, 0 refused)\n (not applied: nothing counted)\n"},
		{"show access-lists check6 | include access-list", "ipv6 access-list extended check6\n"}, // IOS: a name, either family
		{`show access-list ip check | include "seq 20 permit"`, " seq 20 permit ip any any (7 matches, 0 refused)\n"},
		{"show access-list ip check|include seq 20|seq 30", " seq 20 permit ip any any (7 matches, 0 refused)\n"}, // the first | alone is a pipe, later ones alternation
		{"show access-list sessions ip check", `ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 3
   10.0.0.1                                 3/3  at limit
   10.0.0.2                                 1/3
`},
	} {
		var out strings.Builder
		if err := s.Execute(tc.line, &out); err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if out.String() != tc.want {
			t.Errorf("%s:\n%s", tc.line, cmp.Diff(tc.want, out.String()))
		}
	}
	for _, tc := range []struct{ line, want string }{
		{`show access-list ip check | include "seq 20`, `% Error: regular expression "seq 20: the quote is not closed`},
		{`show access-list ip check | include "`, `% Error: regular expression ": the quote is not closed`},
		{"show access-lists nope", `% Error: access-list "nope" does not exist`},
	} {
		var out strings.Builder
		if err := s.Execute(tc.line, &out); err == nil || out.String() != tc.want+"\n" {
			t.Errorf("%s: error %v, output %q; want %s", tc.line, err, out.String(), tc.want)
		}
	}
}

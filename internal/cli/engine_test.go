package cli

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slxsh/slxsh/internal/acl"
)

// visitAtoms calls f for every atom reachable from n, each once.
func visitAtoms(n node, seen map[any]bool, f func(*atom)) {
	switch n := n.(type) {
	case *atom:
		if !seen[n] {
			seen[n] = true
			f(n)
		}
	case seqNode:
		for _, x := range n {
			visitAtoms(x, seen, f)
		}
	case *altNode:
		for _, x := range n.alts {
			visitAtoms(x, seen, f)
		}
	case *anyOrderNode:
		for _, x := range n.items {
			visitAtoms(x, seen, f)
		}
	case optNode:
		visitAtoms(n.n, seen, f)
	case cmdNode:
		visitAtoms(n.c.syntax, seen, f)
	case refNode:
		// The referenced grammar is visited on its own.
	}
}

func allModes() []frame {
	return []frame{
		{kind: modeExec}, {kind: modeConfig},
		{kind: modeACL, fam: acl.IPv4}, {kind: modeACL, fam: acl.IPv6},
		{kind: modeIf}, {kind: modeTimeRange},
	}
}

// TestEveryTokenHasHelp checks that every keyword and parameter of every
// mode has a line of help, and that parameters show a name.
func TestEveryTokenHasHelp(t *testing.T) {
	n := 0
	for _, m := range allModes() {
		visitAtoms(grammarOf(m), map[any]bool{}, func(a *atom) {
			n++
			if strings.TrimSpace(a.help) == "" {
				t.Errorf("mode %d: token %q has no help", m.kind, a.display())
			}
			if a.word == "" && a.name == "" {
				t.Errorf("mode %d: a parameter has no name (help %q)", m.kind, a.help)
			}
			if a.word != "" && a.word != strings.ToLower(a.word) {
				t.Errorf("keyword %q is not lower case", a.word)
			}
		})
	}
	if n < 150 {
		t.Errorf("only %d tokens visited; the walk misses part of the grammar", n)
	}
}

// TestInvalidHint: IOS's established is refused with why slxsh needs none.
func TestInvalidHint(t *testing.T) {
	s := NewSession(NewMemoryBackend(nil), "h")
	var out strings.Builder
	err := s.RunScript(strings.NewReader("conf t\nip access-list extended a\npermit tcp any any established\n"), "f", &out)
	if err == nil || !strings.Contains(out.String(), "f:3: % Invalid input detected at '^' marker. (entries decide new connections; the packets of established ones are always admitted") {
		t.Errorf("error %v, output:\n%s", err, out.String())
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		mode frame
		line string
		kind ErrKind // -1: matches
		tok  int
	}{
		{frame{kind: modeExec}, "show running-config", -1, 0},
		{frame{kind: modeExec}, "sh run", -1, 0},
		{frame{kind: modeExec}, "SH RUN", -1, 0},
		{frame{kind: modeExec}, "s", ErrIncomplete, 1},
		{frame{kind: modeExec}, "c", ErrAmbiguous, 0},
		{frame{kind: modeExec}, "show runing-config", ErrInvalid, 1},
		{frame{kind: modeExec}, "show running-config extra", ErrInvalid, 2},
		{frame{kind: modeExec}, "show access-list i", ErrAmbiguous, 2},
		{frame{kind: modeExec}, "show access-list ip", -1, 0},
		{frame{kind: modeExec}, "sh access-l", -1, 0}, // access-list and access-lists: one command, not ambiguous
		{frame{kind: modeExec}, "sh access-l ip x", -1, 0},
		{frame{kind: modeExec}, "sh access-lists x", -1, 0}, // IOS: a name after access-lists
		{frame{kind: modeExec}, "sh access-l x", -1, 0},     // ... and after its abbreviation
		{frame{kind: modeExec}, "sh acc", -1, 0},
		{frame{kind: modeExec}, "sh i", ErrAmbiguous, 1},
		{frame{kind: modeExec}, "wr", -1, 0},              // IOS: write memory
		{frame{kind: modeExec}, "sh run|inc host", -1, 0}, // IOS: the pipe against its neighbours
		{frame{kind: modeExec}, "sh run |inc host", -1, 0},
		{frame{kind: modeExec}, "sh run| inc a|b", -1, 0},
		{frame{kind: modeExec}, "wr mem", -1, 0},
		{frame{kind: modeExec}, "show access-list sessions ip", ErrIncomplete, 4},
		{frame{kind: modeConfig}, "interface management 0", -1, 0},
		{frame{kind: modeConfig}, "interface eth0", -1, 0},
		{frame{kind: modeConfig}, "interface e 0/1", -1, 0},
		{frame{kind: modeConfig}, "interface ethernet 0/1/2", ErrInvalid, 2},
		{frame{kind: modeACL}, "permit tcp any any eq 22 connlimit 3", -1, 0},
		{frame{kind: modeACL}, "permit tcp any any eq 22 connlimit", ErrIncomplete, 7},
		{frame{kind: modeACL}, "permit tcp any any eq 22 log log", ErrInvalid, 7},
		{frame{kind: modeACL}, "permit ip any any eq 22", ErrInvalid, 4},
		{frame{kind: modeACL}, "permit tcp 10.0.0.0 0.0.0.255 any", -1, 0},
		{frame{kind: modeACL}, "permit tcp 10.0.0.0 any", ErrInvalid, 3},
		{frame{kind: modeACL}, "permit tcp ::1 any", ErrInvalid, 2},
		{frame{kind: modeACL, fam: acl.IPv6}, "permit tcp ::1/128 any", -1, 0},
		{frame{kind: modeACL}, "permit tcp any any connlimit 3 per-prefix 24", -1, 0},
		{frame{kind: modeACL}, "permit tcp any any connlimit 3 per-prefix 33", ErrInvalid, 7},
		{frame{kind: modeACL}, "permit tcp any any connlimit 3 per-prefix 0", ErrInvalid, 7},
		{frame{kind: modeACL, fam: acl.IPv6}, "permit tcp any any connlimit 3 per-prefix 64", -1, 0},
		{frame{kind: modeACL, fam: acl.IPv6}, "permit tcp any any connlimit 3 per-prefix 129", ErrInvalid, 7},
		{frame{kind: modeACL, fam: acl.IPv6}, "permit ip any any", -1, 0}, // ip abbreviates ipv6
		{frame{kind: modeACL, fam: acl.IPv6}, "permit ipx any any", ErrInvalid, 1},
		{frame{kind: modeACL}, `permit tcp any any refuse message "a b  c"`, -1, 0},
		{frame{kind: modeACL}, "remark", ErrIncomplete, 1},
		{frame{kind: modeTimeRange}, "periodic daily 08:00 to 18:00", -1, 0},
		{frame{kind: modeConfig}, "do show version", -1, 0},
		{frame{kind: modeConfig}, "do exit", ErrInvalid, 1},
		{frame{kind: modeConfig}, "do end", ErrInvalid, 1},
		{frame{kind: modeTimeRange}, "periodic daily 08:00 18:00", ErrInvalid, 3},
	}
	for _, tt := range tests {
		p, err := parseLine(grammarOf(tt.mode), tt.line)
		switch {
		case tt.kind == -1 && err != nil:
			t.Errorf("%q: got error kind %d at token %d, want a match", tt.line, err.kind, err.tok)
		case tt.kind == -1 && p.cmd == nil:
			t.Errorf("%q: no command", tt.line)
		case tt.kind != -1 && err == nil:
			t.Errorf("%q: matched, want error kind %d", tt.line, tt.kind)
		case tt.kind != -1 && (err.kind != tt.kind || err.tok != tt.tok):
			t.Errorf("%q: got error kind %d at token %d, want kind %d at %d", tt.line, err.kind, err.tok, tt.kind, tt.tok)
		}
	}
}

// TestEntryArgs checks the typed values an entry line binds.
func TestEntryArgs(t *testing.T) {
	p, err := parseLine(grammarOf(frame{kind: modeACL}),
		`seq 7 deny udp 10.1.0.0 0.0.255.255 range ntp 200 host 10.0.0.1 neq 53 connlimit 4 per-prefix 16 rate 9 per hour burst 2 total quota 3 gbytes per day block-for 30 user www-data refuse message "x\"y" load-limit 0.5 log`)
	if err != nil {
		t.Fatalf("error kind %d at %d", err.kind, err.tok)
	}
	got := p.args.(*entryArgs).e
	host, _ := acl.NewWildcardAddr(mustAddr("10.0.0.1"), mustAddr("0.0.0.0"))
	src, _ := acl.NewWildcardAddr(mustAddr("10.1.0.0"), mustAddr("0.0.255.255"))
	want := acl.Entry{
		Seq: 7, Action: acl.Deny, Proto: acl.ProtoUDP,
		Src: src, SrcPort: acl.PortMatch{Op: acl.PortRange, Lo: 123, Hi: 200},
		Dst: host, DstPort: acl.PortMatch{Op: acl.PortNeq, Lo: 53},
		Connlimits: []acl.Connlimit{{N: 4, Key: acl.PerPrefix, PrefixLen: 16}},
		Rate:       &acl.Rate{N: 9, Per: acl.Hour, Burst: 2, Key: acl.Total},
		Quota:      &acl.Quota{N: 3, Unit: acl.GBytes, Per: acl.Day},
		BlockFor:   &acl.BlockFor{Seconds: 30},
		LoadLimit:  &acl.LoadLimit{Hundredths: 50},
		Owner:      &acl.Owner{User: "www-data"},
		Refuse:     acl.Refuse{Kind: acl.RefuseMessage, Message: `x"y`},
		Log:        true,
	}
	if d := cmp.Diff(want, got, equateNetip); d != "" {
		t.Errorf("entry (-want +got):\n%s", d)
	}
}

// TestApplyLines checks the transaction seam: context, line index of
// errors, and that the input config is never modified.
func TestApplyLines(t *testing.T) {
	base, err := ParseConfig("ip access-list extended a\n seq 10 permit tcp any any eq 22\n!\n")
	if err != nil {
		t.Fatal(err)
	}
	before := acl.Format(base)
	c, err := ApplyLines(base, Txn{Context: []string{"ip access-list extended a"}, Lines: []string{"permit udp any any", "interface eth1", "ip access-group a in"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "ip access-list extended a\n seq 10 permit tcp any any eq 22\n seq 20 permit udp any any\n!\ninterface eth1\n ip access-group a in\n!\n"
	if got := acl.Format(c); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	_, err = ApplyLines(base, Txn{Context: []string{"ip access-list extended a"}, Lines: []string{"permit udp any any", "seq 10 permit icmp any any", "hostname x"}})
	var le *LineError
	if !errors.As(err, &le) || le.Line != 1 || le.Kind != ErrSemantic {
		t.Errorf("got %#v, want a semantic error on line 1", err)
	}
	_, err = ApplyLines(base, Txn{Lines: []string{"hostname x", "ip access-list extended a", "permit tcp any any eq 22 bogus"}})
	if !errors.As(err, &le) || le.Line != 2 || le.Kind != ErrInvalid || le.Col != len("permit tcp any any eq 22 ") {
		t.Errorf("got %#v, want invalid input on line 2 at column 25", err)
	}
	if acl.Format(base) != before {
		t.Errorf("ApplyLines modified its input")
	}
	// A LineError survives the agent's socket as JSON.
	b, _ := json.Marshal(le)
	var back LineError
	if err := json.Unmarshal(b, &back); err != nil || back.Error() != le.Error() || back.Col != le.Col || back.Line != le.Line {
		t.Errorf("LineError JSON round trip: %s -> %#v", b, back)
	}
	// Lines after end are refused, not silently dropped.
	if _, err := ApplyLines(base, Txn{Lines: []string{"end", "hostname x"}}); err == nil {
		t.Errorf("a line after end was accepted")
	}
}

// TestScriptBlockIsOneTransaction checks that a scripted block reaches the
// backend as one Txn, and an interactive line as one Txn each.
func TestScriptBlockIsOneTransaction(t *testing.T) {
	rb := &recordingBackend{Backend: NewMemoryBackend(nil)}
	s := NewSession(rb, "h")
	var out strings.Builder
	script := "configure terminal\nip access-list extended a\n permit tcp any any eq 22\nexit\ninterface eth0\n ip access-group a in\nend\n"
	if err := s.RunScript(strings.NewReader(script), "s", &out); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(rb.txns) != 1 || len(rb.txns[0].Lines) != 6 {
		t.Fatalf("got transactions %#v, want one of 6 lines", rb.txns)
	}
	rb.txns = nil
	for _, l := range []string{"conf t", "ip access-list extended b", "permit udp any any", "end"} {
		if err := s.Execute(l, &out); err != nil {
			t.Fatal(err)
		}
	}
	want := []Txn{
		{Lines: []string{"ip access-list extended b"}},
		{Context: []string{"ip access-list extended b"}, Lines: []string{"permit udp any any"}},
	}
	if d := cmp.Diff(want, rb.txns); d != "" {
		t.Errorf("interactive transactions (-want +got):\n%s", d)
	}
}

type recordingBackend struct {
	Backend
	txns []Txn
}

func (r *recordingBackend) Configure(t Txn) error {
	r.txns = append(r.txns, t)
	return r.Backend.Configure(t)
}

// TestScriptExit checks that exit in exec mode ends a script and that the
// lines after it do not run.
func TestScriptExit(t *testing.T) {
	s := NewSession(NewMemoryBackend(nil), "h")
	var out strings.Builder
	if err := s.RunScript(strings.NewReader("show version\nexit\nbogus line\n"), "s", &out); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if !s.Done() || strings.Contains(out.String(), "%") {
		t.Errorf("done=%v output %q", s.Done(), out.String())
	}
}

// TestNoMore: `| nomore` tells the terminal not to page that output only.
func TestNoMore(t *testing.T) {
	s := NewSession(NewMemoryBackend(nil), "h")
	var out strings.Builder
	for _, tc := range []struct {
		line string
		want bool
	}{{"show running-config | nomore", true}, {"show running-config", false}, {"show version | include slxsh | nomore", true}, {"show bogus | nomore", false}} {
		s.Execute(tc.line, &out)
		if s.NoMore() != tc.want {
			t.Errorf("%s: NoMore %v", tc.line, s.NoMore())
		}
	}
}

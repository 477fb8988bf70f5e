package cli

import (
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/acl"
)

// TestRemarkBeforeNumberedEntry: the IOS layout `remark ...` then `seq 10
// permit ...` puts the remark right before its entry instead of taking
// seq 10 (which made the entry collide), several remarks in order; the
// same lines again change nothing; a remark with no room below the entry
// stays where it was numbered.
func TestRemarkBeforeNumberedEntry(t *testing.T) {
	txn := Txn{Lines: []string{
		"ip access-list extended check",
		"remark allow ssh",
		"seq 10 permit tcp any any eq 22",
		"remark web",
		"remark more web",
		"seq 20 permit tcp any any eq 80",
		"remark the rest",
		"permit ip any any",
	}}
	cfg, err := ApplyLines(acl.New(), txn)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		" seq 9 remark allow ssh", " seq 10 permit tcp any any eq 22",
		" seq 18 remark web", " seq 19 remark more web", " seq 20 permit tcp any any eq 80",
		" seq 30 remark the rest", " seq 40 permit ip any any",
	}
	got := acl.Format(cfg)
	if !strings.Contains(got, strings.Join(want, "\n")+"\n") {
		t.Fatalf("running-config:\n%s\nwant the entries\n%s", got, strings.Join(want, "\n"))
	}
	again, err := ApplyLines(cfg, txn)
	if err != nil || acl.Format(again) != got {
		t.Errorf("the same lines again: %v\n%s", err, acl.Format(again))
	}

	// No room below seq 10 (seq 9 is taken): the remark stays at 19.
	cfg, err = ApplyLines(acl.New(), Txn{Lines: []string{
		"ip access-list extended x", "seq 9 permit tcp any any eq 25", "remark late", "seq 10 permit tcp any any eq 22",
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := acl.Format(cfg); !strings.Contains(got, " seq 9 permit tcp any any eq 25\n seq 10 permit tcp any any eq 22\n seq 19 remark late\n") {
		t.Errorf("running-config:\n%s", got)
	}
}

// TestInteractiveRemarkBeforeNumberedEntry: typed line by line (each line
// its own transaction), `remark` then `seq 10 permit` ends as in a script;
// if the entry fails, the remark stays where it was numbered.
func TestInteractiveRemarkBeforeNumberedEntry(t *testing.T) {
	b := NewMemoryBackend(acl.New())
	s := NewSession(b, "device")
	var out strings.Builder
	for _, line := range []string{"configure terminal", "ip access-list extended check", "remark allow ssh", "seq 10 permit tcp any any eq 22",
		"remark broken", "seq 20 permit tcp any any eq 23 time-range nope"} {
		s.Execute(line, &out)
	}
	cfg, _ := b.Running()
	got := acl.Format(cfg)
	if !strings.Contains(got, " seq 9 remark allow ssh\n seq 10 permit tcp any any eq 22\n seq 20 remark broken\n") {
		t.Errorf("running-config:\n%s\noutput:\n%s", got, out.String())
	}
	if !strings.Contains(out.String(), `time-range "nope" does not exist`) {
		t.Errorf("the bad entry was not refused:\n%s", out.String())
	}
}

// TestRemarkWithPipe: a remark keeps its text with "|" in it (the first
// "|" of a line is a token of its own, for `sh run|inc`, but a remark is
// the rest of the line as typed).
func TestRemarkWithPipe(t *testing.T) {
	cfg, err := ApplyLines(acl.New(), Txn{Lines: []string{"ip access-list extended a", "remark in|out | both", "seq 20 remark |x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := acl.Format(cfg), " seq 10 remark in|out | both\n seq 20 remark |x\n"; !strings.Contains(got, want) {
		t.Errorf("running-config:\n%s\nwant\n%s", got, want)
	}
}

// TestIOSSequenceNumbers: IOS's `10 permit ...` (no `seq`) numbers an
// entry as `seq 10` does, with a remark before it as in IOS; `no 10`
// deletes it, `no 10 ENTRY` only when 10 holds that entry; the same
// lines again change nothing.
func TestIOSSequenceNumbers(t *testing.T) {
	txn := Txn{Lines: []string{
		"ip access-list extended check",
		"remark ssh",
		"10 permit tcp any any eq 22 connlimit 3",
		"20 permit tcp any any eq 80",
		"30 deny ip any any",
		"no 30",
		"40 permit ip any any",
	}}
	cfg, err := ApplyLines(acl.New(), txn)
	if err != nil {
		t.Fatal(err)
	}
	want := " seq 9 remark ssh\n seq 10 permit tcp any any eq 22 connlimit 3\n seq 20 permit tcp any any eq 80\n seq 40 permit ip any any\n!"
	if got := acl.Format(cfg); !strings.Contains(got, want) {
		t.Fatalf("running-config:\n%s\nwant\n%s", got, want)
	}
	if again, err := ApplyLines(cfg, txn); err != nil || acl.Format(again) != acl.Format(cfg) {
		t.Errorf("the same lines again: %v\n%s", err, acl.Format(again))
	}
	ctx := []string{"ip access-list extended check"}
	if _, err := ApplyLines(cfg, Txn{Context: ctx, Lines: []string{"no 20 permit tcp any any eq 81"}}); err == nil || !strings.Contains(err.Error(), "seq 20 of access-list \"check\" is another entry") {
		t.Errorf("no 20 with another entry: %v", err)
	}
	next, err := ApplyLines(cfg, Txn{Context: ctx, Lines: []string{"no 20 permit tcp any any eq 80", "no 40"}})
	if err != nil || strings.Contains(acl.Format(next), "seq 20 ") || strings.Contains(acl.Format(next), "seq 40 ") {
		t.Errorf("no 20 ENTRY, no 40: %v\n%s", err, acl.Format(next))
	}
}

// TestRepeatedRemark: a remark a file repeats before another entry is
// kept each time (the Nth remark T of a visit of the list is the list's
// Nth), in one transaction and typed line by line; the same lines again,
// either way, add nothing.
func TestRepeatedRemark(t *testing.T) {
	lines := []string{
		"ip access-list extended web",
		"remark allow web", "permit tcp any any eq www connlimit 10",
		"remark allow dns", "permit udp any any eq domain",
		"remark allow web", "permit ip any any",
	}
	want := " seq 10 remark allow web\n seq 20 permit tcp any any eq 80 connlimit 10\n seq 30 remark allow dns\n seq 40 permit udp any any eq 53\n seq 50 remark allow web\n seq 60 permit ip any any\n!"
	cfg, err := ApplyLines(acl.New(), Txn{Lines: lines})
	if err != nil {
		t.Fatal(err)
	}
	if got := acl.Format(cfg); !strings.Contains(got, want) {
		t.Fatalf("one transaction:\n%s\nwant\n%s", got, want)
	}
	b := NewMemoryBackend(acl.New())
	s := NewSession(b, "device")
	var out strings.Builder
	typed := append([]string{"configure terminal"}, lines...)
	for _, l := range append(append(typed, "exit"), lines...) { // typed twice
		if err := s.Execute(l, &out); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
	}
	after, _ := b.Running()
	if acl.Format(after) != acl.Format(cfg) {
		t.Errorf("typed twice:\n%s\nwant\n%s", acl.Format(after), acl.Format(cfg))
	}
	if again, err := ApplyLines(after, Txn{Lines: lines}); err != nil || acl.Format(again) != acl.Format(cfg) {
		t.Errorf("sent again: %v\n%s", err, acl.Format(again))
	}
}

// TestTypedRemarkMovedBeforeItsEntry: a remark typed again (the second of
// its text) that took the seq of the entry typed next is moved before that
// entry, and the list's first remark of that text stays.
func TestTypedRemarkMovedBeforeItsEntry(t *testing.T) {
	b := NewMemoryBackend(acl.New())
	s := NewSession(b, "device")
	var out strings.Builder
	lines := []string{"configure terminal", "ip access-list extended check",
		"remark ssh", "seq 20 permit tcp any any eq 22", "permit tcp any any eq 23",
		"remark ssh", "seq 40 permit tcp any any eq 2222"}
	for _, l := range lines {
		if err := s.Execute(l, &out); err != nil {
			t.Fatalf("%q: %v\n%s", l, err, out.String())
		}
	}
	cfg, _ := b.Running()
	want := " seq 10 remark ssh\n seq 20 permit tcp any any eq 22\n seq 30 permit tcp any any eq 23\n seq 39 remark ssh\n seq 40 permit tcp any any eq 2222\n!"
	if got := acl.Format(cfg); !strings.Contains(got, want) {
		t.Errorf("running-config:\n%s\nwant\n%s", got, want)
	}
}

// TestRemarkCountsAgreeTypedAndScripted: a numbered remark counts among
// its visit's remarks (`seq 9 remark web` then `remark web` is two, as in
// a running-config with lines added), entering the list's mode again
// starts another visit, and typed line by line or sent as one block the
// same lines give the same list, then change nothing when sent again.
func TestRemarkCountsAgreeTypedAndScripted(t *testing.T) {
	for _, lines := range [][]string{
		{"ip access-list extended a", "seq 9 remark web", "seq 10 permit tcp any any eq 80", "remark web", "permit tcp any any eq 8080"},
		{"ip access-list extended a", "remark web", "permit tcp any any eq 80", "ip access-list extended a", "remark web", "permit tcp any any eq 443"},
	} {
		script, err := ApplyLines(acl.New(), Txn{Lines: lines})
		if err != nil {
			t.Fatal(err)
		}
		b := NewMemoryBackend(acl.New())
		s := NewSession(b, "device")
		var out strings.Builder
		for _, l := range append([]string{"configure terminal"}, lines...) {
			if err := s.Execute(l, &out); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
		}
		typed, _ := b.Running()
		if acl.Format(typed) != acl.Format(script) {
			t.Errorf("%q typed:\n%s\nsent as one block:\n%s", lines, acl.Format(typed), acl.Format(script))
		}
		again, err := ApplyLines(script, Txn{Lines: lines})
		if err != nil || acl.Format(again) != acl.Format(script) {
			t.Errorf("%q sent again: %v\n%s", lines, err, acl.Format(again))
		}
	}
	cfg, _ := ApplyLines(acl.New(), Txn{Lines: []string{"ip access-list extended a", "seq 9 remark web", "seq 10 permit tcp any any eq 80", "remark web", "permit tcp any any eq 8080"}})
	if got := strings.Count(acl.Format(cfg), "remark web"); got != 2 {
		t.Errorf("a numbered remark then the same without a seq: %d remarks, want 2:\n%s", got, acl.Format(cfg))
	}
}

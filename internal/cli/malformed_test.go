package cli

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/slxsh/slxsh/internal/acl"
)

const baseConfig = `hostname base
!
time-range tr
 periodic daily 01:00 to 02:00
!
ip access-list extended a
 seq 10 permit tcp any any eq 22 connlimit 3
 seq 20 permit ip any any
!
ipv6 access-list extended six
 seq 10 permit tcp any any eq 22
!
interface management 0
 ip access-group a in
!
`

// malformed lines, each typed in the mode that the context lines enter.
var malformed = []struct {
	context []string
	line    string
}{
	// global configuration
	{nil, "ip access-lsit extended x"},
	{nil, "ip access-list extended"},
	{nil, "ip access-list extended bad name"},
	{nil, "ip access-list extended -x"},
	{nil, "ip access-list standard x"},
	{nil, "i"},
	{nil, "hostname"},
	{nil, "hostname a b"},
	{nil, "hostname -bad"},
	{nil, "interface management 1"},
	{nil, "interface ethernet 0"},
	{nil, "interface ethernet a/b"},
	{nil, "interface this-name-is-too-long0"},
	{nil, "connlimit existing-sessions maybe"},
	{nil, "no ip access-list extended a"},  // applied
	{nil, "no ip access-list extended zz"}, // does not exist
	{nil, "no time-range tr2"},
	{nil, "no interface ethernet 9/9"},
	{nil, "permit tcp any any"}, // an entry outside of an ACL
	{nil, `"`},
	{nil, "|"},
	{nil, "do"},
	{nil, "do show runn extra"},
	// IPv4 ACL
	{[]string{"ip access-list extended a"}, "permit"},
	{[]string{"ip access-list extended a"}, "permit tcp"},
	{[]string{"ip access-list extended a"}, "permit tcp any"},
	{[]string{"ip access-list extended a"}, "permit tcp any any eq"},
	{[]string{"ip access-list extended a"}, "permit tcp any any eq 65536"},
	{[]string{"ip access-list extended a"}, "permit tcp any any eq nosuchservice"},
	{[]string{"ip access-list extended a"}, "permit tcp any any range 10"},
	{[]string{"ip access-list extended a"}, "permit tcp any any range 20 10"},
	{[]string{"ip access-list extended a"}, "permit 256 any any"},
	{[]string{"ip access-list extended a"}, "permit tcp 10.0.0.0/33 any"},
	{[]string{"ip access-list extended a"}, "permit tcp 10.0.0.1.1 any"},
	{[]string{"ip access-list extended a"}, "permit tcp host any any"},
	{[]string{"ip access-list extended a"}, "permit tcp 2001:db8::/32 any"},
	{[]string{"ip access-list extended a"}, "permit tcp any any connlimit -1"},
	{[]string{"ip access-list extended a"}, "permit tcp any any connlimit 70000"},
	{[]string{"ip access-list extended a"}, "permit tcp any any connlimit 3 per-prefix 33"},
	{[]string{"ip access-list extended a"}, "permit tcp any any connlimit 3 connlimit 4"},
	{[]string{"ip access-list extended a"}, "permit tcp any any rate 0 per second"},
	{[]string{"ip access-list extended a"}, "permit tcp any any rate 5 per week"},
	{[]string{"ip access-list extended a"}, "permit tcp any any quota 5 tbytes per day"},
	{[]string{"ip access-list extended a"}, "permit tcp any any quota 5 mbytes per second"},
	{[]string{"ip access-list extended a"}, "permit tcp any any block-for 0"},
	{[]string{"ip access-list extended a"}, "permit tcp any any time-range nosuch"},
	{[]string{"ip access-list extended a"}, "permit tcp any any load-limit 1.234"},
	{[]string{"ip access-list extended a"}, "permit tcp any any load-limit 0"},
	{[]string{"ip access-list extended a"}, "permit tcp any any user 1bad"},
	{[]string{"ip access-list extended a"}, "permit tcp any any uid 1 user root"},
	{[]string{"ip access-list extended a"}, "permit tcp any any user root"}, // a is applied in
	{[]string{"ip access-list extended a"}, "permit tcp any any refuse"},
	{[]string{"ip access-list extended a"}, "permit tcp any any refuse message unquoted"},
	{[]string{"ip access-list extended a"}, `permit tcp any any refuse message "bad \x escape"`},
	{[]string{"ip access-list extended a"}, "permit tcp any any log count log"},
	{[]string{"ip access-list extended a"}, "permit icmp any eq 1 any"},
	{[]string{"ip access-list extended a"}, "seq 30 permit tcp any any eq 22 connlimit 3"}, // the entry of seq 10 under another seq
	{[]string{"ip access-list extended a"}, "seq 10 permit udp any any"},                   // seq taken
	{[]string{"ip access-list extended a"}, "seq 0 permit udp any any"},
	{[]string{"ip access-list extended a"}, "seq 65536 permit udp any any"},
	{[]string{"ip access-list extended a"}, "no seq 11"},
	{[]string{"ip access-list extended a"}, "no permit udp any any"},
	{[]string{"ip access-list extended a"}, "resequence 65535 10"},
	{[]string{"ip access-list extended a"}, "resequence 10 10 10"},
	{[]string{"ip access-list extended a"}, "remark"},
	// IPv6 ACL
	{[]string{"ipv6 access-list extended six"}, "permit tcp 10.0.0.0/8 any"},
	{[]string{"ipv6 access-list extended six"}, "permit tcp host 10.0.0.1 any"},
	{[]string{"ipv6 access-list extended six"}, "permit tcp 2001:db8::/129 any"},
	{[]string{"ipv6 access-list extended six"}, "permit tcp any any connlimit 1 per-prefix 129"},
	// interface
	{[]string{"interface management 0"}, "ip access-group nosuch in"},
	{[]string{"interface management 0"}, "ip access-group a sideways"},
	{[]string{"interface management 0"}, "ip access-group a"},
	{[]string{"interface management 0"}, "no ip access-group a out"},
	{[]string{"interface management 0"}, "ipv6 access-group a in"}, // a is IPv4
	// time range
	{[]string{"time-range tr"}, "periodic daily 24:00 to 01:00"},
	{[]string{"time-range tr"}, "periodic someday 01:00 to 02:00"},
	{[]string{"time-range tr"}, "periodic daily 01:00 to 01:00"},
	{[]string{"time-range tr"}, "absolute"},
	{[]string{"time-range tr"}, "absolute start 00:00 31 Apr 2027"},
	{[]string{"time-range tr"}, "absolute start 00:00 01 Jan 2028 end 00:00 01 Jan 2027"},
	{[]string{"time-range tr"}, "absolute start 00:00 01 Foo 2027"},
	{[]string{"time-range tr"}, "no periodic weekend 01:00 to 02:00"},
}

// TestMalformedLines types each malformed line in its mode: each gets a
// "%" error, and neither the running config nor the mode changes.
func TestMalformedLines(t *testing.T) {
	if len(malformed) < 40 {
		t.Fatalf("corpus has %d lines, want at least 40", len(malformed))
	}
	base, err := ParseConfig(baseConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range malformed {
		b := NewMemoryBackend(base)
		s := NewSession(b, "h")
		var out strings.Builder
		for _, l := range append([]string{"configure terminal"}, m.context...) {
			if err := s.Execute(l, &out); err != nil {
				t.Fatalf("context %q: %v", l, err)
			}
		}
		prompt := s.Prompt()
		out.Reset()
		err := s.Execute(m.line, &out)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		last := lines[len(lines)-1]
		if err == nil || !strings.HasPrefix(last, "% ") {
			t.Errorf("%q in %q: got error %v and output %q, want a %% error", m.line, prompt, err, out.String())
		}
		after, _ := b.Running()
		if d := cmp.Diff(base, after, equateNetip); d != "" {
			t.Errorf("%q changed the config:\n%s", m.line, d)
		}
		if s.Prompt() != prompt {
			t.Errorf("%q changed the mode: %q -> %q", m.line, prompt, s.Prompt())
		}
		// The same line in a script: FILE:LINE and nothing applied.
		b2 := NewMemoryBackend(base)
		s2 := NewSession(b2, "h")
		out.Reset()
		script := "configure terminal\n" + strings.Join(m.context, "\n") + "\n" + m.line + "\nhostname changed\nend\n"
		if err := s2.RunScript(strings.NewReader(script), "f", &out); err == nil || !strings.Contains(out.String(), "f:") {
			t.Errorf("script with %q: got %v, output %q", m.line, err, out.String())
		}
		if after, _ := b2.Running(); !cmp.Equal(base, after, equateNetip) {
			t.Errorf("script with %q changed the config", m.line)
		}
	}
}

// FuzzExecute types arbitrary lines in each mode: the shell never panics,
// every error is a "%" message, and a line that fails changes nothing.
func FuzzExecute(f *testing.F) {
	for _, m := range malformed {
		f.Add(uint8(len(m.context)), m.line)
	}
	for _, l := range []string{"permit tcp any any eq 22 connlimit 3", "sh run | i x", "do sh run", "interface eth0",
		"no seq 10", "resequence", "periodic daily 01:00 to 02:00", `permit tcp any any refuse message "a\"b"`, "remark x y"} {
		f.Add(uint8(1), l)
	}
	base, err := ParseConfig(baseConfig)
	if err != nil {
		f.Fatal(err)
	}
	contexts := [][]string{nil, {"ip access-list extended a"}, {"ipv6 access-list extended six"}, {"interface management 0"}, {"time-range tr"}, {"exec"}}
	f.Fuzz(func(t *testing.T, mode uint8, line string) {
		if strings.ContainsAny(line, "\n\r") {
			return
		}
		b := NewMemoryBackend(base)
		s := NewSession(b, "h")
		var out strings.Builder
		ctx := contexts[int(mode)%len(contexts)]
		if len(ctx) == 0 || ctx[0] != "exec" {
			ctx = append([]string{"configure terminal"}, ctx...)
		} else {
			ctx = nil
		}
		for _, l := range ctx {
			if err := s.Execute(l, &out); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.Help(line)
		_ = s.Complete(line)
		out.Reset()
		if err := s.Execute(line, &out); err != nil {
			if !strings.Contains(out.String(), "% ") {
				t.Errorf("%q: error %v printed without %%: %q", line, err, out.String())
			}
			if after, _ := b.Running(); !cmp.Equal(base, after, equateNetip) {
				t.Errorf("%q failed but changed the config", line)
			}
		}
		// Whatever was applied still formats to a replayable config.
		after, _ := b.Running()
		text := acl.Format(after)
		back, err := ParseConfig(text)
		if err != nil {
			t.Fatalf("%q: running config does not replay: %v\n%s", line, err, text)
		}
		if !cmp.Equal(after, back, equateNetip) {
			t.Fatalf("%q: running config differs after replay\n%s", line, text)
		}
	})
}

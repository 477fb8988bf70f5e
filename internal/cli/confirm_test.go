package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const savedACL = "ip access-list extended a\n seq 10 permit tcp any any eq 22\n!\n"

// configured returns a session whose running-config holds savedACL and
// whose startup-config is empty.
func configured(t *testing.T) (*Session, Backend) {
	t.Helper()
	b := NewMemoryBackend(nil)
	s := NewSession(b, "device")
	var out bytes.Buffer
	if err := s.RunScript(strings.NewReader("conf t\nip access-list extended a\npermit tcp any any eq 22\nend\n"), "setup", &out); err != nil {
		t.Fatalf("setup: %v\n%s", err, out.String())
	}
	return s, b
}

func startup(t *testing.T, b Backend) string {
	t.Helper()
	st, err := Call(b, OpStartup, NoArgs{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCopyAsksOnTerminal: copy running-config startup-config asks (as
// SLX-OS) when the session can ask; "no" keeps the startup-config, "yes"
// writes it; write memory never asks.
func TestCopyAsksOnTerminal(t *testing.T) {
	for _, tc := range []struct {
		line    string
		answers []string // "" after the last: the end of input
		asked   int
		written bool
	}{
		{"copy running-config startup-config", []string{"n"}, 1, false},
		{"copy running-config startup-config", []string{"y"}, 1, true},
		{"copy run start", []string{"YES"}, 1, true},
		{"copy run start", []string{"maybe", "yess", "no"}, 3, false}, // asked again until yes or no
		{"copy run start", []string{""}, 1, true},                     // Enter alone: yes, as IOS's copy takes it
		{"copy run start", []string{" "}, 1, true},
		{"copy run start", []string{"maybe", "y"}, 2, true},
		{"copy run start", []string{"maybe"}, 2, false}, // the end of input is no
		{"write memory", nil, 0, true},
	} {
		s, b := configured(t)
		var questions []string
		answers := tc.answers
		s.SetConfirm(func(q string) (string, bool) {
			questions = append(questions, q)
			if len(answers) == 0 {
				return "", false
			}
			a := answers[0]
			answers = answers[1:]
			return a, true
		})
		var out bytes.Buffer
		if err := s.Execute(tc.line, &out); err != nil {
			t.Fatalf("%s: %v", tc.line, err)
		}
		if len(questions) != tc.asked {
			t.Errorf("%s (answers %q): asked %q", tc.line, tc.answers, questions)
		}
		for _, q := range questions {
			// Ansible's slxos_config (save_when) waits for this text.
			if !strings.HasPrefix(q, "This operation will modify your startup configuration. Do you want to continue") {
				t.Errorf("question %q", q)
			}
		}
		if got := startup(t, b); (got == savedACL) != tc.written || (got != "" && got != savedACL) {
			t.Errorf("%s (answers %q): startup-config %q", tc.line, tc.answers, got)
		}
		if want := map[bool]string{true: "Building configuration...\n[OK]\n"}[tc.line == "write memory"]; out.String() != want {
			t.Errorf("%s: output %q, want %q", tc.line, out.String(), want)
		}
	}
}

// TestCopyInScriptDoesNotAsk: a script never asks, even in a session that
// can (`slxsh -c 'copy running-config startup-config'` saves).
func TestCopyInScriptDoesNotAsk(t *testing.T) {
	s, b := configured(t)
	s.SetConfirm(func(string) (string, bool) { t.Error("a script was asked"); return "", false })
	var out bytes.Buffer
	if err := s.RunScript(strings.NewReader("copy running-config startup-config\n"), "s", &out); err != nil {
		t.Fatal(err, out.String())
	}
	if got := startup(t, b); got != savedACL {
		t.Errorf("startup-config %q", got)
	}
	// The session asks again afterwards.
	asked := false
	s.SetConfirm(func(string) (string, bool) { asked = true; return "", false })
	s.Execute("copy running-config startup-config", &out)
	if !asked {
		t.Error("not asked after a script ran")
	}
}

// denyBackend is a backend whose user may not change the configuration.
func denyBackend(b Backend) Backend {
	return withOps(b, func(h Handlers[struct{}]) {
		Handle(h, OpMayConfigure, func(struct{}, NoArgs) (NoArgs, error) {
			return NoArgs{}, errors.New("% Error: permission denied")
		})
	})
}

// TestConfigureTerminalPermission: a backend that knows the user may not
// change the configuration makes configure terminal itself fail, staying
// in exec mode; show commands still work.
func TestConfigureTerminalPermission(t *testing.T) {
	s := NewSession(denyBackend(NewMemoryBackend(nil)), "device")
	for _, line := range []string{"configure terminal", "conf t revert timer 5"} {
		var out bytes.Buffer
		err := s.Execute(line, &out)
		if err == nil || out.String() != "% Error: permission denied\n" {
			t.Errorf("%s: err %v, output %q", line, err, out.String())
		}
		if p := s.Prompt(); p != "device# " {
			t.Errorf("%s: prompt %q, want exec", line, p)
		}
	}
	var out bytes.Buffer
	if err := s.Execute("show running-config", &out); err != nil {
		t.Errorf("show running-config: %v", err)
	}
	// copy running-config startup-config does not ask a question whose
	// yes would be refused.
	s.SetConfirm(func(string) (string, bool) { t.Error("asked a user who may not save"); return "y", true })
	out.Reset()
	if err := s.Execute("copy running-config startup-config", &out); err == nil || out.String() != "% Error: permission denied\n" {
		t.Errorf("copy as a non-admin: %v, %q", err, out.String())
	}
	s.SetConfirm(nil)
	// In a script the error names the line and stops.
	out.Reset()
	err := s.RunScript(strings.NewReader("show running-config\nconfigure terminal\nhostname x\nend\n"), "f", &out)
	if err == nil || !strings.Contains(out.String(), "f:2: % Error: permission denied") {
		t.Errorf("script: %v, output %q", err, out.String())
	}
	// A backend that allows it enters configuration mode.
	s = NewSession(NewMemoryBackend(nil), "device")
	s.Execute("configure terminal", &out)
	if p := s.Prompt(); p != "device(config)# " {
		t.Errorf("allowed: prompt %q", p)
	}
}

// TestShowStartupWithoutEnd: show startup-config leaves out the "end" line
// that ends aclagent's file, so that it compares equal to show
// running-config when they hold the same configuration.
func TestShowStartupWithoutEnd(t *testing.T) {
	const framed = "! slxsh configuration written by aclagent\nip access-list extended a\n seq 10 permit tcp any any eq 22\n!\nend\n"
	b := withOps(NewMemoryBackend(nil), func(h Handlers[struct{}]) {
		Handle(h, OpStartup, func(struct{}, NoArgs) (string, error) { return framed, nil })
	})
	s := NewSession(b, "device")
	var out bytes.Buffer
	if err := s.Execute("show startup-config", &out); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSuffix(framed, "end\n"); out.String() != want {
		t.Errorf("show startup-config = %q, want %q", out.String(), want)
	}
}

// TestPromptFollowsHostname: a session's prompt takes a hostname another
// session set (or a revert timer restored) at its next refresh, and the
// default host when the hostname is removed.
func TestPromptFollowsHostname(t *testing.T) {
	b := NewMemoryBackend(nil)
	s, other := NewSession(b, "device"), NewSession(b, "device")
	var out bytes.Buffer
	for _, l := range []string{"configure terminal", "hostname lab1", "end"} {
		if err := other.Execute(l, &out); err != nil {
			t.Fatal(err)
		}
	}
	if p := s.Prompt(); p != "device# " {
		t.Errorf("before the refresh: %q", p)
	}
	s.RefreshHost()
	if p := s.Prompt(); p != "lab1# " {
		t.Errorf("after another session set hostname lab1: %q", p)
	}
	for _, l := range []string{"configure terminal", "no hostname", "end"} {
		if err := other.Execute(l, &out); err != nil {
			t.Fatal(err)
		}
	}
	s.RefreshHost()
	if p := s.Prompt(); p != "device# " {
		t.Errorf("after no hostname: %q", p)
	}
}

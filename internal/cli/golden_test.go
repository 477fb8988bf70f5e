package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"

	"github.com/slxsh/slxsh/internal/acl"
)

var update = flag.Bool("update", false, "rewrite the output sections of testdata/cli/*.txtar")

// TestGolden replays the CLI sessions of testdata/cli/*.txtar and compares
// the screen. Each archive holds:
//
//	-- input --   typed lines. A line ending in "?" asks for help on the text
//	              before it (the line is then dropped, as after Ctrl-C); a
//	              line ending in "<TAB>" completes its last word; "^Z" is
//	              Ctrl-Z. The line after one that asks a question (copy
//	              running-config startup-config) is the answer.
//	-- script --  optional: run first with RunScript as file "script"; a
//	              failing script adds "[exit status 1]" to the screen.
//	-- screen --  the expected screen: prompt, echoed line, output.
//
// go test ./internal/cli -run Golden -update rewrites the screens.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("../../testdata/cli/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden sessions: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txtar"), func(t *testing.T) {
			ar, err := txtar.ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := replay(t, section(ar, "script"), section(ar, "input"))
			want := section(ar, "screen")
			if *update {
				setSection(ar, "screen", got)
				if err := os.WriteFile(f, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("screen differs (-want +got):\n%s", cmp.Diff(want, got))
			}
		})
	}
}

func section(ar *txtar.Archive, name string) string {
	for _, f := range ar.Files {
		if f.Name == name {
			return string(f.Data)
		}
	}
	return ""
}

func setSection(ar *txtar.Archive, name, data string) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = []byte(data)
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: []byte(data)})
}

// replay types the input into a fresh session and returns the screen.
func replay(t *testing.T, script, input string) string {
	s := NewSession(agentInterfaces(NewMemoryBackend(nil)), "device")
	s.SetHost(fakeHost{})
	var screen bytes.Buffer
	if script != "" {
		if err := s.RunScript(strings.NewReader(script), "script", &screen); err != nil {
			screen.WriteString("[exit status 1]\n")
		}
	}
	lines := strings.Split(strings.TrimSuffix(input, "\n"), "\n")
	// A question (copy running-config startup-config) is answered by the
	// next input line, shown after it as typed.
	s.SetConfirm(func(q string) (string, bool) {
		if len(lines) == 0 {
			screen.WriteString(q + "\n[end of input]\n")
			return "", false
		}
		answer := lines[0]
		lines = lines[1:]
		screen.WriteString(q + answer + "\n")
		return answer, true
	})
	for len(lines) > 0 {
		line := lines[0]
		lines = lines[1:]
		if input == "" {
			break
		}
		prompt := s.Prompt()
		switch {
		case line == "^Z":
			screen.WriteString(prompt + "^Z\n")
			s.End()
		case strings.HasSuffix(line, "?"):
			screen.WriteString(prompt + line + "\n")
			screen.WriteString(s.Help(strings.TrimSuffix(line, "?")))
		case strings.HasSuffix(line, "<TAB>"):
			text := strings.TrimSuffix(line, "<TAB>")
			screen.WriteString(prompt + line + "\n")
			screen.WriteString(tab(s, text) + "\n")
		default:
			screen.WriteString(prompt + line + "\n")
			s.Execute(line, &screen)
		}
		if s.Done() {
			screen.WriteString("[session ended]\n")
			break
		}
	}
	return screen.String()
}

// tab shows what TAB does: a unique completion rewrites the line; several
// candidates are listed.
func tab(s *Session, text string) string {
	c := s.Complete(text)
	switch len(c) {
	case 0:
		return "[no completion]"
	case 1:
		toks := tokenize(text)
		if len(toks) == 0 || endsBlank(text) {
			return s.Prompt() + text + c[0]
		}
		last := toks[len(toks)-1]
		return s.Prompt() + text[:last.off] + c[0]
	}
	return strings.Join(c, "  ")
}

// agentInterfaces maps management 0 to eth0, as an agent would.
func agentInterfaces(b Backend) Backend {
	return withOps(b, func(h Handlers[struct{}]) {
		Handle(h, OpInterfaces, func(struct{}, NoArgs) ([]InterfaceName, error) {
			return []InterfaceName{{Kind: acl.IfManagement, Name: "0", Linux: "eth0"}}, nil
		})
	})
}

// fakeHost is a fixed host for the goldens.
type fakeHost struct{}

func (fakeHost) Chassis() (model, product, serial string) {
	return "Linux-amd64", "Standard PC (Q35 + ICH9, 2009)", ""
}

func (fakeHost) Memory() (total, free uint64, err error) { return 16318604, 12000000, nil }

func (fakeHost) Interfaces() ([]HostInterface, error) {
	return []HostInterface{
		{Name: "eth0", Up: true, MAC: "52:54:00:12:34:56", MTU: 1500, Addrs: []string{"10.24.12.129/24", "10.24.13.1/24", "2001:db8::129/64", "fe80::5054:ff:fe12:3456/64"}},
		{Name: "eth1", MAC: "52:54:00:12:34:57", MTU: 9000},
		{Name: "lo", Up: true, Loopback: true, MTU: 65536, Addrs: []string{"127.0.0.1/8", "::1/128"}},
	}, nil
}

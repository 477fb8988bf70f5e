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
	s := NewSession(NewMemoryBackend(nil), "device")
	var screen bytes.Buffer
	if script != "" {
		if err := s.RunScript(strings.NewReader(script), "script", &screen); err != nil {
			screen.WriteString("[exit status 1]\n")
		}
	}
	lines := strings.Split(strings.TrimSuffix(input, "\n"), "\n")
	// A question (copy running-config startup-config) is answered by the
	// next input line, shown after it as typed.
	s.SetConfirm(func(q string) bool {
		if len(lines) == 0 {
			screen.WriteString(q + "\n[end of input]\n")
			return false
		}
		answer := lines[0]
		lines = lines[1:]
		screen.WriteString(q + answer + "\n")
		return answer == "y" || answer == "yes"
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

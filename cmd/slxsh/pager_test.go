package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// fakeTerm records output and answers --More-- with scripted keys.
type fakeTerm struct {
	out  bytes.Buffer
	keys []rune
}

func (f *fakeTerm) Write(p []byte) (int, error) { return f.out.Write(p) }

func (f *fakeTerm) ReadKey(prompt string) (rune, error) {
	f.out.WriteString("[" + prompt + "]")
	if len(f.keys) == 0 {
		return 0, io.EOF
	}
	k := f.keys[0]
	f.keys = f.keys[1:]
	return k, nil
}

func TestPage(t *testing.T) {
	ten := "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n"
	for _, tc := range []struct {
		name   string
		length int
		keys   string
		want   string
		err    bool
	}{
		{"length 0 shows all", 0, "", ten, false},
		{"fits", 11, "", ten, false},
		{"space pages", 5, "  ", "1\n2\n3\n4\n[ --More-- ]5\n6\n7\n8\n[ --More-- ]9\n10\n", false},
		{"enter one line", 5, "\r  ", "1\n2\n3\n4\n[ --More-- ]5\n[ --More-- ]6\n7\n8\n9\n[ --More-- ]10\n", false},
		{"q stops", 5, "q", "1\n2\n3\n4\n[ --More-- ]", false},
		{"another key stops", 5, "s", "1\n2\n3\n4\n[ --More-- ]", false}, // IOS: any other key quits
		{"end of input", 5, "", "1\n2\n3\n4\n[ --More-- ]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTerm{keys: []rune(tc.keys)}
			err := page(f, []byte(ten), tc.length, 80)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if got := f.out.String(); got != tc.want {
				t.Fatalf("output %q, want %q", got, tc.want)
			}
		})
	}
	if strings.Count(ten, "\n") != 10 {
		t.Fatal("bad fixture")
	}
}

// TestPageWrapped: a screen counts the rows that wrapped lines take on a
// terminal of the width given, not lines (a 40-column window showed twice
// its height before --More--).
func TestPageWrapped(t *testing.T) {
	long := strings.Repeat("x", 50) + "\n" // two rows at width 40
	out := strings.Repeat(long, 5)
	f := &fakeTerm{keys: []rune("  ")}
	if err := page(f, []byte(out), 5, 40); err != nil {
		t.Fatal(err)
	}
	// 4 rows above --More--: two lines a screen.
	want := long + long + "[ --More-- ]" + long + long + "[ --More-- ]" + long
	if got := f.out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
	// A line taller than the screen is shown whole, one a screen.
	f = &fakeTerm{keys: []rune(" ")}
	huge := strings.Repeat("y", 400) + "\n"
	if err := page(f, []byte(huge+huge), 5, 40); err != nil {
		t.Fatal(err)
	}
	if got, want := f.out.String(), huge+"[ --More-- ]"+huge; got != want {
		t.Errorf("a line taller than the screen: %q, want %q", got, want)
	}
	// Unknown width: lines.
	f = &fakeTerm{}
	page(f, []byte(out), 6, 0)
	if got, want := f.out.String(), strings.Repeat(long, 5); got != want {
		t.Errorf("width 0: %q, want %q", got, want)
	}
}

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
		{"end of input", 5, "", "1\n2\n3\n4\n[ --More-- ]", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeTerm{keys: []rune(tc.keys)}
			err := page(f, []byte(ten), tc.length)
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

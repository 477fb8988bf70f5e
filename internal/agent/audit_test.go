package agent

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/slxsh/slxsh/internal/cli"
)

// The audit log's lines of a change: the context and lines joined with
// "; ", cut at 2000 bytes with the count of lines, whatever the length of
// the lines around the cut.
func TestAuditLines(t *testing.T) {
	want := func(t *cli.Txn) string {
		s := strings.Join(append(append([]string(nil), t.Context...), t.Lines...), "; ")
		if len(s) > 2000 {
			s = s[:2000] + fmt.Sprintf("... (%d lines)", len(t.Context)+len(t.Lines))
		}
		return s
	}
	many := make([]string, 50000)
	for i := range many {
		many[i] = fmt.Sprintf("seq %d permit tcp host 10.0.%d.%d any eq %d", i+1, i/256%256, i%256, 1000+i)
	}
	for _, tx := range []cli.Txn{
		{Lines: []string{"ip access-list extended check", "seq 10 permit ip any any"}},
		{Context: []string{"ip access-list extended check"}, Lines: many},
		{Lines: []string{strings.Repeat("x", 1999), "y"}},  // the cut in the separator
		{Lines: []string{strings.Repeat("x", 1998), "yz"}}, // right after it
		{Lines: []string{strings.Repeat("x", 2000)}},       // exactly the limit
		{Lines: []string{strings.Repeat("x", 5000), "y"}},
		{Lines: []string{"", "x"}}, {Context: []string{"ctx"}},
		{},
	} {
		if got, w := auditLines(&tx), want(&tx); got != w {
			t.Errorf("auditLines of %d+%d lines:\n%.80q...\nwant\n%.80q...", len(tx.Context), len(tx.Lines), got, w)
		}
	}
}

// A change is logged with who made it and its lines (from the argument
// the operation decoded); a look is not.
func TestAuditLogOfAChange(t *testing.T) {
	ta := newTestAgent(t)
	var buf bytes.Buffer
	srv := NewServer(ta.Agent, &Authorizer{})
	srv.log = slog.New(slog.NewTextHandler(&buf, nil))
	root := Peer{UID: 0, PID: 4321}
	lines := []string{"ip access-list extended check", "seq 10 permit ip any any"}
	if resp := srv.dispatch(root, request(t, cli.OpConfigure, cli.Txn{Lines: lines})); resp.Error != "" {
		t.Fatal(resp.Error)
	}
	srv.dispatch(root, request(t, cli.OpRunning, cli.NoArgs{}))
	want := `msg="request done" op=configure uid=0 pid=4321 lines="ip access-list extended check; seq 10 permit ip any any"`
	if got := buf.String(); !strings.Contains(got, want) || strings.Count(got, "request done") != 1 {
		t.Errorf("audit log:\n%s\nwant one line with\n%s", got, want)
	}
}

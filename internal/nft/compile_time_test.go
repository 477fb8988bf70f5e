package nft_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/cli"
	"github.com/slxsh/slxsh/internal/nft"
)

const dstConfig = `time-range office
 periodic weekdays 08:00 to 18:30
!
time-range early
 periodic daily 00:30 to 08:00
!
ip access-list extended tr
 seq 10 permit tcp any any eq 22 time-range office
 seq 20 permit tcp any any eq 23 time-range early
!
interface eth0
 ip access-group tr in
`

// timeConds returns the time conditions of the rules of seq in the
// compiled ruleset, one line per copy of the entry's rules.
func timeConds(rs *nft.Ruleset, seq string) []string {
	var out []string
	for _, ch := range rs.Chains {
		for _, r := range ch.Rules {
			ref, role, ok := nft.ParseComment(r.Comment)
			if !ok || role != "" || ref.Seq == 0 || "seq="+strconv.Itoa(ref.Seq) != seq {
				continue
			}
			var conds []string
			for _, s := range r.Stmts {
				switch s.(type) {
				case *nft.MetaDay, *nft.MetaHour, *nft.MetaTime:
					conds = append(conds, s.String())
				}
			}
			out = append(out, strings.Join(conds, " "))
		}
	}
	return out
}

func parse(t *testing.T, text string) *acl.Config {
	t.Helper()
	cfg, err := cli.ParseConfig(text)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestTimeRangeDST compiles local time ranges for Europe/Berlin on both
// sides of both DST transitions of 2026 (29 March and 25 October, 01:00
// UTC): the UTC times follow the offset, +1 in winter and +2 in summer,
// and a range that crosses UTC midnight splits in two.
func TestTimeRangeDST(t *testing.T) {
	cfg := parse(t, dstConfig)
	cases := []struct {
		now           time.Time
		office, early []string
	}{
		{time.Date(2026, 3, 29, 0, 59, 59, 0, time.UTC),
			[]string{`meta day 1-5 meta hour "07:00"-"17:29:59"`},
			[]string{`meta hour "00:00"-"06:59:59"`, `meta hour "23:30"-"23:59:59"`}},
		{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC),
			[]string{`meta day 1-5 meta hour "06:00"-"16:29:59"`},
			[]string{`meta hour "00:00"-"05:59:59"`, `meta hour "22:30"-"23:59:59"`}},
		{time.Date(2026, 10, 25, 0, 59, 59, 0, time.UTC),
			[]string{`meta day 1-5 meta hour "06:00"-"16:29:59"`},
			[]string{`meta hour "00:00"-"05:59:59"`, `meta hour "22:30"-"23:59:59"`}},
		{time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC),
			[]string{`meta day 1-5 meta hour "07:00"-"17:29:59"`},
			[]string{`meta hour "00:00"-"06:59:59"`, `meta hour "23:30"-"23:59:59"`}},
	}
	for _, c := range cases {
		rs, err := nft.Compile(cfg, nft.Options{Zone: berlin, Now: c.now})
		if err != nil {
			t.Fatal(err)
		}
		if got := timeConds(rs, "seq=10"); strings.Join(got, "|") != strings.Join(c.office, "|") {
			t.Errorf("%v: office compiles to %q, want %q", c.now, got, c.office)
		}
		if got := timeConds(rs, "seq=20"); strings.Join(got, "|") != strings.Join(c.early, "|") {
			t.Errorf("%v: early compiles to %q, want %q", c.now, got, c.early)
		}
	}
	// The agent recompiles at the transitions: they are found to the second.
	for _, want := range []time.Time{time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC)} {
		got, ok := acl.NextOffsetChange(want.Add(-40*24*time.Hour+time.Second/3), berlin)
		if !ok || !got.Equal(want) {
			t.Errorf("next offset change before %v: %v %v", want, got, ok)
		}
	}
}

// Local weekdays cross into other UTC days: Monday 00:30 in Berlin
// (summer) is Sunday 22:30 UTC.
func TestTimeRangeCrossesUTCDay(t *testing.T) {
	cfg := parse(t, `time-range t
 periodic weekdays 00:30 to 08:00
 periodic sunday 23:00 to 01:00
!
ip access-list extended tr
 seq 10 permit tcp any any eq 22 time-range t
!
interface eth0
 ip access-group tr in
`)
	rs, err := nft.Compile(cfg, nft.Options{Zone: berlin, Now: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	// Sunday 23:00-24:00 local = Sunday 21:00-22:00 UTC; Monday 00:00-01:00
	// local = Sunday 22:00-23:00 UTC; weekdays 00:30-08:00 local = Sun-Thu
	// 22:30-24:00 and Mon-Fri 00:00-06:00 UTC.
	want := []string{
		`meta day "Sunday" meta hour "21:00"-"23:59:59"`,
		`meta day 1-5 meta hour "00:00"-"05:59:59"`,
		`meta day 1-4 meta hour "22:30"-"23:59:59"`,
	}
	if got := timeConds(rs, "seq=10"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("compiles to\n%q\nwant\n%q", got, want)
	}
}

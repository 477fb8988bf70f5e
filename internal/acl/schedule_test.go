package acl

import (
	"testing"
	"time"
	_ "time/tzdata"
)

func TestTimeRangeActiveAndNextChange(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tr := &TimeRange{Name: "t", Periodic: []Periodic{{Days: Weekdays, Start: 8 * 60, End: 18*60 + 30}, {Days: Sunday, Start: 22 * 60, End: 4 * 60}}}
	at := func(s string) time.Time {
		v, err := time.ParseInLocation(time.DateTime, s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		now    string
		active bool
		next   string
	}{
		{"2026-12-04 07:59:59", false, "2026-12-04 08:00:00"}, // a Friday
		{"2026-12-04 08:00:00", true, "2026-12-04 18:30:00"},
		{"2026-12-04 18:30:00", false, "2026-12-06 22:00:00"}, // then Sunday night
		{"2026-12-07 03:00:00", true, "2026-12-07 04:00:00"},  // Sunday's clause into Monday
		{"2026-12-07 04:00:00", false, "2026-12-07 08:00:00"},
	} {
		now := at(c.now)
		if got := tr.Active(now, berlin); got != c.active {
			t.Errorf("%s: active %v, want %v", c.now, got, c.active)
		}
		next, ok := tr.NextChange(now, berlin)
		if !ok || !next.Equal(at(c.next)) {
			t.Errorf("%s: next change %v %v, want %s", c.now, next.In(berlin), ok, c.next)
		}
	}
	abs := &TimeRange{Name: "a", Absolute: &Absolute{End: &DateTime{2027, 1, 1, 0, 0}}}
	if !abs.Active(at("2026-12-31 23:59:59"), berlin) || abs.Active(at("2027-01-01 00:00:00"), berlin) {
		t.Error("absolute end is not exclusive at its minute")
	}
	if _, ok := abs.NextChange(at("2027-01-02 00:00:00"), berlin); ok {
		t.Error("an ended absolute range changes again")
	}
	// A start weeks away, outside the periodic window: the first window
	// after the start (the Friday after New Year's Day, 08:00).
	later := &TimeRange{Name: "l", Periodic: tr.Periodic[:1], Absolute: &Absolute{Start: &DateTime{2027, 1, 1, 19, 0}}}
	for now, want := range map[string]string{
		"2026-12-04 12:00:00": "2027-01-04 08:00:00", // 1 Jan 2027 is a Friday: its window has ended by 19:00
		"2027-01-04 07:00:00": "2027-01-04 08:00:00",
		"2027-01-04 09:00:00": "2027-01-04 18:30:00",
	} {
		if next, ok := later.NextChange(at(now), berlin); !ok || !next.Equal(at(want)) {
			t.Errorf("start ahead, %s: next change %v %v, want %s", now, next.In(berlin), ok, want)
		}
	}
	// A start inside a window: the start itself.
	inside := &TimeRange{Name: "i", Periodic: tr.Periodic[:1], Absolute: &Absolute{Start: &DateTime{2027, 1, 4, 9, 0}}}
	if next, ok := inside.NextChange(at("2026-12-04 12:00:00"), berlin); !ok || !next.Equal(at("2027-01-04 09:00:00")) {
		t.Errorf("start inside a window: next change %v %v", next.In(berlin), ok)
	}
}

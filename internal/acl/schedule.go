package acl

import (
	"slices"
	"time"
)

// Time-range semantics. A periodic clause `DAYS HH:MM to HH:MM` covers
// [start, end) of local wall time on each of its days; an end before the
// start runs to the end time of the next day. `absolute` covers
// [start, end) in local wall time (open ends are unbounded). A range is
// active when the absolute clause (if any) covers the instant and, when it
// has periodic clauses, one of them does.

// Week is the length of the repeating schedule of periodic clauses.
const Week = 7 * 24 * time.Hour

const (
	secondsPerDay  = 24 * 60 * 60
	secondsPerWeek = 7 * secondsPerDay
)

// Interval is a span of the week [Lo, Hi) in seconds since Sunday 00:00.
// Hi may exceed a week for a span that wraps into the next week.
type Interval struct{ Lo, Hi int }

// days returns the weekdays (0 = Sunday) of a periodic day specification.
func (d DaySpec) days() []int {
	switch d {
	case Daily:
		return []int{0, 1, 2, 3, 4, 5, 6}
	case Weekdays:
		return []int{1, 2, 3, 4, 5}
	case Weekend:
		return []int{0, 6}
	}
	// Monday ... Sunday follow Weekend in DaySpec.
	return []int{(int(d-Monday) + 1) % 7}
}

// LocalWeek returns the spans of the local week that the periodic clauses
// cover, in seconds since local Sunday 00:00 (unmerged, possibly
// overlapping, possibly wrapping past the end of the week).
func (t *TimeRange) LocalWeek() []Interval {
	var out []Interval
	for _, p := range t.Periodic {
		length := p.End - p.Start
		if length < 0 {
			length += minutesPerDay
		}
		for _, d := range p.Days.days() {
			lo := d*secondsPerDay + p.Start*60
			out = append(out, Interval{lo, lo + length*60})
		}
	}
	return out
}

// AbsoluteBounds returns the instants of the absolute clause in loc; a
// zero time is an open end. A civil time that does not exist in loc (a DST
// gap) or exists twice is taken as time.Date does.
func (t *TimeRange) AbsoluteBounds(loc *time.Location) (start, end time.Time) {
	if t.Absolute == nil {
		return
	}
	at := func(d *DateTime) time.Time {
		if d == nil {
			return time.Time{}
		}
		return time.Date(d.Year, time.Month(d.Month), d.Day, d.Hour, d.Minute, 0, 0, loc)
	}
	return at(t.Absolute.Start), at(t.Absolute.End)
}

// Active reports whether the range is active at the instant at, with
// local time in loc.
func (t *TimeRange) Active(at time.Time, loc *time.Location) bool {
	start, end := t.AbsoluteBounds(loc)
	if (!start.IsZero() && at.Before(start)) || (!end.IsZero() && !at.Before(end)) {
		return false
	}
	if len(t.Periodic) == 0 {
		return true
	}
	l := at.In(loc)
	s := int(l.Weekday())*secondsPerDay + l.Hour()*3600 + l.Minute()*60 + l.Second()
	for _, iv := range t.LocalWeek() {
		if (s >= iv.Lo && s < iv.Hi) || (s+secondsPerWeek >= iv.Lo && s+secondsPerWeek < iv.Hi) {
			return true
		}
	}
	return false
}

// NextChange returns the first instant after at where Active changes, and
// false when it never does (within the 8 days a periodic schedule repeats
// in, or after the absolute clause's last bound).
func (t *TimeRange) NextChange(at time.Time, loc *time.Location) (time.Time, bool) {
	var cands []time.Time
	start, end := t.AbsoluteBounds(loc)
	if start.After(at) {
		// Inactive until the start, however far: the first change is the
		// start, or the first periodic window after it.
		if t.Active(start, loc) {
			return start, true
		}
		return t.NextChange(start, loc)
	}
	for _, b := range []time.Time{start, end} {
		if !b.IsZero() && b.After(at) {
			cands = append(cands, b)
		}
	}
	l := at.In(loc)
	day0 := time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
	for d := -1; d <= 8; d++ {
		day := day0.AddDate(0, 0, d)
		for _, p := range t.Periodic {
			for _, m := range []int{p.Start, p.End} {
				c := time.Date(day.Year(), day.Month(), day.Day(), m/60, m%60, 0, 0, loc)
				if c.After(at) {
					cands = append(cands, c)
				}
			}
		}
	}
	// A UTC-offset change moves local time under the periodic clauses.
	for from, i := at, 0; i < 4 && len(t.Periodic) > 0; i++ {
		next, ok := NextOffsetChange(from, loc)
		if !ok || next.Sub(at) > 9*24*time.Hour {
			break
		}
		cands, from = append(cands, next), next
	}
	slices.SortFunc(cands, func(a, b time.Time) int { return a.Compare(b) })
	now := t.Active(at, loc)
	for _, c := range cands {
		if t.Active(c, loc) != now {
			return c, true
		}
	}
	return time.Time{}, false
}

// NextOffsetChange returns the first instant after at, within a year and a
// week, where loc's UTC offset changes (a DST transition), and false when
// there is none.
func NextOffsetChange(at time.Time, loc *time.Location) (time.Time, bool) {
	at = at.Truncate(time.Second) // transitions fall on whole seconds
	_, off := at.In(loc).Zone()
	const step = 6 * time.Hour
	for t := at; t.Sub(at) < 372*24*time.Hour; t = t.Add(step) {
		next := t.Add(step)
		if _, o := next.In(loc).Zone(); o != off {
			lo, hi := t, next // offset off at lo, another at hi
			for hi.Sub(lo) > time.Second {
				mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
				if _, o := mid.In(loc).Zone(); o == off {
					lo = mid
				} else {
					hi = mid
				}
			}
			return hi, true
		}
	}
	return time.Time{}, false
}

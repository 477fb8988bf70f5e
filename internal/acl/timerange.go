package acl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Clone returns a deep copy of the time range.
func (t *TimeRange) Clone() *TimeRange {
	n := &TimeRange{Name: t.Name, Periodic: slices.Clone(t.Periodic)}
	if t.Absolute != nil {
		n.Absolute = &Absolute{Start: clonePtr(t.Absolute.Start), End: clonePtr(t.Absolute.End)}
	}
	return n
}

// TimeRange returns the time range, or nil.
func (c *Config) TimeRange(name string) *TimeRange {
	i, ok := c.trIndex(name)
	if !ok {
		return nil
	}
	return c.TimeRanges[i]
}

func (c *Config) trIndex(name string) (int, bool) {
	return slices.BinarySearchFunc(c.TimeRanges, name, func(t *TimeRange, n string) int {
		return strings.Compare(t.Name, n)
	})
}

func (c *Config) mustTimeRange(name string) (*TimeRange, error) {
	if t := c.TimeRange(name); t != nil {
		return t, nil
	}
	return nil, errorf("time-range %q does not exist", name)
}

// EnsureTimeRange returns the time range, creating it if needed.
func (c *Config) EnsureTimeRange(name string) (*TimeRange, error) {
	if !ValidName(name) {
		return nil, errorf("invalid time-range name %q", name)
	}
	i, ok := c.trIndex(name)
	if ok {
		return c.TimeRanges[i], nil
	}
	t := &TimeRange{Name: name}
	c.TimeRanges = slices.Insert(c.TimeRanges, i, t)
	return t, nil
}

// DeleteTimeRange removes a time range; it fails while an entry refers to it.
func (c *Config) DeleteTimeRange(name string) error {
	i, ok := c.trIndex(name)
	if !ok {
		return errorf("time-range %q does not exist", name)
	}
	for _, a := range c.ACLs {
		for _, e := range a.Entries {
			if e.TimeRange == name {
				return errorf("time-range %q is used by %s seq %d", name, a.Label(), e.Seq)
			}
		}
	}
	c.TimeRanges = deleteAt(c.TimeRanges, i)
	return nil
}

func comparePeriodic(a, b Periodic) int {
	if a.Days != b.Days {
		return int(a.Days) - int(b.Days)
	}
	if a.Start != b.Start {
		return a.Start - b.Start
	}
	return a.End - b.End
}

// AddPeriodic adds a periodic clause; one the range holds already is no
// error and changes nothing (IOS; Ansible and Netmiko re-send lines).
// Clauses are kept sorted by days, start and end.
func (c *Config) AddPeriodic(name string, p Periodic) error {
	t, err := c.mustTimeRange(name)
	if err != nil {
		return err
	}
	if err := checkPeriodic(p); err != nil {
		return err
	}
	i, ok := slices.BinarySearchFunc(t.Periodic, p, comparePeriodic)
	if ok {
		return nil
	}
	t.Periodic = slices.Insert(t.Periodic, i, p)
	return nil
}

// DeletePeriodic removes a periodic clause.
func (c *Config) DeletePeriodic(name string, p Periodic) error {
	t, err := c.mustTimeRange(name)
	if err != nil {
		return err
	}
	i, ok := slices.BinarySearchFunc(t.Periodic, p, comparePeriodic)
	if !ok {
		return errorf("periodic %s does not exist", formatPeriodic(p))
	}
	t.Periodic = deleteAt(t.Periodic, i)
	return nil
}

// DeleteAbsolute removes the absolute clause: `no absolute` removes the one
// there is, `no absolute start ... [end ...]` only one with the bounds
// given (a bound left out is any); as `no periodic`, it fails when there
// is no such clause.
func (c *Config) DeleteAbsolute(name string, want *Absolute) error {
	t, err := c.mustTimeRange(name)
	if err != nil {
		return err
	}
	if t.Absolute == nil {
		return errorf("time-range %q has no absolute", name)
	}
	if want != nil && !absoluteMatches(t.Absolute, want) {
		return errorf("%s does not exist (time-range %q has %s)", formatAbsolute(want), name, formatAbsolute(t.Absolute))
	}
	t.Absolute = nil
	return nil
}

// absoluteMatches reports whether clause have has the bounds that want
// gives (a nil bound of want matches any).
func absoluteMatches(have, want *Absolute) bool {
	match := func(h, w *DateTime) bool { return w == nil || h != nil && *h == *w }
	return match(have.Start, want.Start) && match(have.End, want.End)
}

// formatAbsolute renders the clause as the config writes it.
func formatAbsolute(a *Absolute) string {
	s := "absolute"
	if a.Start != nil {
		s += " start " + a.Start.String()
	}
	if a.End != nil {
		s += " end " + a.End.String()
	}
	return s
}

// SetAbsolute sets the absolute clause; end must not be before start, and at
// least one of them must be given.
func (c *Config) SetAbsolute(name string, a *Absolute) error {
	t, err := c.mustTimeRange(name)
	if err != nil {
		return err
	}
	if err := checkAbsolute(a); err != nil {
		return err
	}
	t.Absolute = &Absolute{Start: clonePtr(a.Start), End: clonePtr(a.End)}
	return nil
}

const minutesPerDay = 24 * 60

func checkPeriodic(p Periodic) error {
	if p.Days < Daily || p.Days > Sunday {
		return errorf("unknown periodic days %d", int(p.Days))
	}
	if p.Start < 0 || p.Start >= minutesPerDay || p.End < 0 || p.End >= minutesPerDay {
		return errorf("periodic times must be 00:00-23:59")
	}
	if p.Start == p.End {
		return errorf("periodic %s starts and ends at the same time", FormatClock(p.Start))
	}
	return nil
}

// Year bounds of absolute times.
const (
	MinYear = 1970
	MaxYear = 2099
)

// Check returns an error unless t is a valid civil time (1970-2099).
func (t DateTime) Check() error {
	if t.Year < MinYear || t.Year > MaxYear {
		return errorf("year %d out of range %d-%d", t.Year, MinYear, MaxYear)
	}
	if t.Month < 1 || t.Month > 12 {
		return errorf("month %d out of range 1-12", t.Month)
	}
	if t.Day < 1 || t.Day > daysIn(t.Year, t.Month) {
		return errorf("%s %d has no day %d", monthNames[t.Month-1], t.Year, t.Day)
	}
	if t.Hour < 0 || t.Hour > 23 || t.Minute < 0 || t.Minute > 59 {
		return errorf("time %02d:%02d out of range 00:00-23:59", t.Hour, t.Minute)
	}
	return nil
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// Compare orders two times: negative when t is before u.
func (t DateTime) Compare(u DateTime) int {
	a := [...]int{t.Year, t.Month, t.Day, t.Hour, t.Minute}
	b := [...]int{u.Year, u.Month, u.Day, u.Hour, u.Minute}
	return slices.Compare(a[:], b[:])
}

// String renders the time as `HH:MM DD Mon YYYY` ("00:00 01 Jan 2026").
func (t DateTime) String() string {
	m := "???"
	if t.Month >= 1 && t.Month <= 12 {
		m = monthNames[t.Month-1]
	}
	return fmt.Sprintf("%02d:%02d %02d %s %04d", t.Hour, t.Minute, t.Day, m, t.Year)
}

func checkAbsolute(a *Absolute) error {
	if a.Start == nil && a.End == nil {
		return errorf("absolute needs a start or an end")
	}
	for _, t := range []*DateTime{a.Start, a.End} {
		if t != nil {
			if err := t.Check(); err != nil {
				return err
			}
		}
	}
	if a.Start != nil && a.End != nil && a.End.Compare(*a.Start) < 0 {
		return errorf("absolute end %s is before start %s", a.End, a.Start)
	}
	return nil
}

// ParseClock parses `HH:MM` (00:00-23:59, two digits each) into minutes
// since midnight.
func ParseClock(s string) (int, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, errorf("time %q is not HH:MM", s)
	}
	h, err1 := strconv.Atoi(s[:2])
	m, err2 := strconv.Atoi(s[3:])
	if err1 != nil || err2 != nil || s[0] == '+' || s[0] == '-' || s[3] == '+' || s[3] == '-' {
		return 0, errorf("time %q is not HH:MM", s)
	}
	if h > 23 || m > 59 {
		return 0, errorf("time %q out of range 00:00-23:59", s)
	}
	return h*60 + m, nil
}

// FormatClock renders minutes since midnight as `HH:MM`.
func FormatClock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

func formatPeriodic(p Periodic) string {
	return fmt.Sprintf("%s %s to %s", p.Days, FormatClock(p.Start), FormatClock(p.End))
}

package nft

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/slxsh/slxsh/internal/acl"
)

// time-range: an entry with `time-range NAME` only applies while the range
// is active, enforced by the kernel's clock (agent down or not). The
// kernel's meta day/hour are UTC, so the local schedule is converted with
// the zone's UTC offset at Options.Now: the agent recompiles when the
// offset changes (DST). The week the periodic clauses cover becomes
// disjoint UTC blocks `meta day D1-D2 meta hour "HH:MM"-"HH:MM:SS"`, and
// `absolute` is `meta time >= "START" meta time < "END"` (an instant, no
// recompile needed). The entry's rules are compiled once per block with
// the block's conditions after its match: at any instant at most one
// block holds, so a connection meets the entry's limits at most once, and
// the replicas share the entry's sets, counters and chains. Outside every
// block the entry matches nothing and evaluation goes on with the next
// entry (an inactive entry refuses nothing).
//
// Times print as `nft list` prints them with TZ=UTC: nft itself converts
// meta hour and meta time to and from its own local time zone.

// timeBlock is a span of UTC time in every week: the days DayLo-DayHi
// (0 = Sunday), and on each of them the seconds [Lo, Hi) since midnight.
type timeBlock struct {
	DayLo, DayHi int
	Lo, Hi       int
}

const (
	daySeconds  = 24 * 60 * 60
	weekSeconds = 7 * daySeconds
)

// utcBlocks converts a time range's periodic clauses into UTC blocks for
// a zone whose UTC offset is offset seconds (local = UTC + offset). A range
// without periodic clauses is one block covering the week.
func utcBlocks(t *acl.TimeRange, offset int) []timeBlock {
	if len(t.Periodic) == 0 {
		return []timeBlock{{0, 6, 0, daySeconds}}
	}
	// The covered seconds of each UTC day, as sorted disjoint spans.
	perDay := make([][]acl.Interval, 7)
	for _, iv := range t.LocalWeek() {
		lo := ((iv.Lo-offset)%weekSeconds + weekSeconds) % weekSeconds
		hi := lo + iv.Hi - iv.Lo
		for lo < hi {
			day := (lo / daySeconds) % 7
			end := min(hi, (lo/daySeconds+1)*daySeconds)
			start := lo % daySeconds
			perDay[day] = append(perDay[day], acl.Interval{Lo: start, Hi: start + end - lo})
			lo = end
		}
	}
	type span struct{ lo, hi int }
	days := map[span][]int{}
	for d := range perDay {
		for _, iv := range merge(perDay[d]) {
			s := span{iv.Lo, iv.Hi}
			days[s] = append(days[s], d)
		}
	}
	var out []timeBlock
	for s, ds := range days {
		for i := 0; i < len(ds); {
			j := i
			for j+1 < len(ds) && ds[j+1] == ds[j]+1 {
				j++
			}
			out = append(out, timeBlock{ds[i], ds[j], s.lo, s.hi})
			i = j + 1
		}
	}
	slices.SortFunc(out, func(a, b timeBlock) int {
		if a.DayLo != b.DayLo {
			return a.DayLo - b.DayLo
		}
		return a.Lo - b.Lo
	})
	return out
}

// merge returns the union of spans as sorted disjoint spans.
func merge(ivs []acl.Interval) []acl.Interval {
	slices.SortFunc(ivs, func(a, b acl.Interval) int { return a.Lo - b.Lo })
	var out []acl.Interval
	for _, iv := range ivs {
		if n := len(out); n > 0 && iv.Lo <= out[n-1].Hi {
			out[n-1].Hi = max(out[n-1].Hi, iv.Hi)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// stmts returns the conditions of a block (none for what always holds).
func (b timeBlock) stmts() []Stmt {
	var out []Stmt
	if b.DayLo != 0 || b.DayHi != 6 {
		out = append(out, &MetaDay{Lo: uint8(b.DayLo), Hi: uint8(b.DayHi)})
	}
	if b.Lo != 0 || b.Hi != daySeconds {
		out = append(out, &MetaHour{Lo: uint32(b.Lo), Hi: uint32(b.Hi - 1)})
	}
	return out
}

// timeConds returns the alternatives of conditions under which an entry
// applies: one list per block (a single empty one without time-range).
func (b *builder) timeConds(path entryAt, e *acl.Entry) ([][]Stmt, bool) {
	if e.TimeRange == "" {
		return [][]Stmt{nil}, true
	}
	tr := b.cfg.TimeRange(e.TimeRange)
	if tr == nil {
		b.errorf(path.String(), "time-range %q does not exist", e.TimeRange)
		return nil, false
	}
	loc := b.opt.Zone
	if loc == nil {
		loc = time.UTC
	}
	_, offset := b.opt.Now.In(loc).Zone()
	var abs []Stmt
	start, end := tr.AbsoluteBounds(loc)
	if !start.IsZero() {
		abs = append(abs, &MetaTime{At: start})
	}
	if !end.IsZero() {
		abs = append(abs, &MetaTime{At: end, Before: true})
	}
	var out [][]Stmt
	for _, blk := range utcBlocks(tr, offset) {
		out = append(out, slices.Concat(blk.stmts(), abs))
	}
	return out, true
}

// MetaDay matches the UTC weekday (0 = Sunday): `meta day "Sunday"`, or
// for a span `meta day 1-5` (as nft 1.0.6 lists them).
type MetaDay struct{ Lo, Hi uint8 }

var dayNames = [...]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}

// String renders the statement as nft lists it.
func (s *MetaDay) String() string {
	if s.Lo == s.Hi {
		return `meta day "` + dayNames[s.Lo%7] + `"`
	}
	return "meta day " + strconv.Itoa(int(s.Lo)) + "-" + strconv.Itoa(int(s.Hi))
}

// Exprs implements Stmt: the day is one byte; a span is two compares, as
// nft emits it.
func (s *MetaDay) Exprs() []expr.Any {
	out := []expr.Any{&expr.Meta{Key: metaDay, Register: 1}}
	if s.Lo == s.Hi {
		return append(out, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{s.Lo}})
	}
	return append(out, &expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: []byte{s.Lo}},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: []byte{s.Hi}})
}

// MetaHour matches the UTC time of day, seconds since midnight, both ends
// included: `meta hour "06:30"-"17:59:59"`.
type MetaHour struct{ Lo, Hi uint32 }

// String renders the statement as nft lists it with TZ=UTC.
func (s *MetaHour) String() string { return "meta hour " + clock(s.Lo) + "-" + clock(s.Hi) }

func clock(sec uint32) string {
	if sec%60 == 0 {
		return fmt.Sprintf(`"%02d:%02d"`, sec/3600, sec/60%60)
	}
	return fmt.Sprintf(`"%02d:%02d:%02d"`, sec/3600, sec/60%60, sec%60)
}

// Exprs implements Stmt: the kernel loads the seconds in host order; nft
// converts them to big endian and compares.
func (s *MetaHour) Exprs() []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: metaHour, Register: 1},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 4, Size: 4},
		&expr.Cmp{Op: expr.CmpOpGte, Register: 1, Data: binaryutil.BigEndian.PutUint32(s.Lo)},
		&expr.Cmp{Op: expr.CmpOpLte, Register: 1, Data: binaryutil.BigEndian.PutUint32(s.Hi)},
	}
}

// MetaTime compares the wall clock with an instant: `meta time >= "2027-01-01
// 00:00:00"`, or with Before `meta time < "..."`.
type MetaTime struct {
	At     time.Time
	Before bool
}

// String renders the statement as nft lists it with TZ=UTC.
func (s *MetaTime) String() string {
	op := ">="
	if s.Before {
		op = "<"
	}
	return "meta time " + op + ` "` + s.At.UTC().Format(time.DateTime) + `"`
}

// Exprs implements Stmt: nanoseconds since the epoch, compared big endian.
func (s *MetaTime) Exprs() []expr.Any {
	op := expr.CmpOpGte
	if s.Before {
		op = expr.CmpOpLt
	}
	return []expr.Any{
		&expr.Meta{Key: metaTime, Register: 1},
		&expr.Byteorder{SourceRegister: 1, DestRegister: 1, Op: expr.ByteorderHton, Len: 8, Size: 8},
		&expr.Cmp{Op: op, Register: 1, Data: binaryutil.BigEndian.PutUint64(uint64(s.At.UnixNano()))},
	}
}

// The meta keys google/nftables v0.3.0 has no names for
// (NFT_META_TIME_NS, _DAY, _HOUR).
const (
	metaTime expr.MetaKey = 30
	metaDay  expr.MetaKey = 31
	metaHour expr.MetaKey = 32
)

// timeCopyWord is the word that ends the comments of the i-th copy (from
// 0) of an entry's rules after the first: "t2", "t3", ...
func timeCopyWord(i int) string { return "t" + strconv.Itoa(i+1) }

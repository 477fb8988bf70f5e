package agent

import (
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nflog"
	"github.com/slxsh/slxsh/internal/nft"
)

// The events of `log` entries: the kernel sends them to an NFLOG group
// (rate-limited per entry and reason, internal/nft compile_log.go); the
// agent reads them (cmd/aclagent), logs one structured line each, keeps
// the last ones for `show logging`, and counts refusals by reason for the
// metrics.

// DefaultLogEvents is how many events `show logging` keeps.
const DefaultLogEvents = 1000

// LogEvent is one decoded `log` event.
type LogEvent struct {
	Time     time.Time
	Entry    nft.EntryRef
	Reason   string // permit, deny, connlimit, connlimit-full, rate, rate-full, load, ...
	Proto    uint8
	Src, Dst netip.Addr
	SPort    uint16
	DPort    uint16
}

// Permitted reports whether the event is a match that the entry admitted.
func (e LogEvent) Permitted() bool { return e.Reason == "permit" }

// Verdict is "permitted" or "denied", as IOS prints it.
func (e LogEvent) Verdict() string {
	if e.Permitted() {
		return "permitted"
	}
	return "denied"
}

// EventLog is a bounded ring of the last events, newest last. It is safe
// for concurrent use; memory is bounded by its size.
type EventLog struct {
	log *slog.Logger

	mu       sync.Mutex
	ring     []LogEvent
	next     int  // where the next event goes
	full     bool // the ring has wrapped
	byReason map[string]uint64
	dropped  uint64 // events with a prefix that is not ours
	lost     uint64 // read errors that lost events (socket buffer overflow)
	unread   string // why the events are not read ("" while they are)
}

// NewEventLog keeps the last size events (DefaultLogEvents when size <= 0)
// and logs each to log.
func NewEventLog(size int, log *slog.Logger) *EventLog {
	if size <= 0 {
		size = DefaultLogEvents
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &EventLog{log: log, ring: make([]LogEvent, size), byReason: map[string]uint64{}}
}

// ParseLogEvent reads an NFLOG event of our rules: the prefix is "REASON
// acl=NAME dir=DIR seq=N" (nft.RuleComment after the reason).
func ParseLogEvent(ev nflog.Event) (LogEvent, bool) {
	reason, rest, ok := strings.Cut(ev.Prefix, " ")
	if !ok || reason == "" {
		return LogEvent{}, false
	}
	ref, role, ok := nft.ParseComment(rest)
	if !ok || (role != "" && role != nft.RoleBlocked) || (ref.Seq == 0) != (role == nft.RoleBlocked) {
		return LogEvent{}, false
	}
	return LogEvent{Time: ev.Time, Entry: ref, Reason: reason, Proto: ev.Proto,
		Src: ev.Src, Dst: ev.Dst, SPort: ev.SPort, DPort: ev.DPort}, true
}

// Record adds an NFLOG event: one log line, one ring slot, and for a
// refusal one count under its reason.
func (l *EventLog) Record(ev nflog.Event) {
	e, ok := ParseLogEvent(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.dropped++
		return
	}
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	l.full = l.full || l.next == 0
	if !e.Permitted() {
		l.byReason[e.Reason]++
	}
	l.log.Info("acl log", "acl", e.Entry.ACL, "family", e.Entry.Family.String(), "dir", e.Entry.Dir.String(),
		"seq", e.Entry.Seq, "verdict", e.Verdict(), "reason", e.Reason, "proto", protoName(e.Proto),
		"src", e.Src.String(), "sport", e.SPort, "dst", e.Dst.String(), "dport", e.DPort)
}

// Unavailable records that the events cannot be read (the NFLOG group
// could not be bound): show logging says so instead of showing nothing.
func (l *EventLog) Unavailable(why string) {
	l.mu.Lock()
	l.unread = why
	l.mu.Unlock()
}

// Lost counts a read error after which events were lost.
func (l *EventLog) Lost() {
	l.mu.Lock()
	l.lost++
	l.mu.Unlock()
}

// Events returns the kept events, oldest first.
func (l *EventLog) Events() []LogEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.full {
		return slices.Clone(l.ring[:l.next])
	}
	return append(slices.Clone(l.ring[l.next:]), l.ring[:l.next]...)
}

// Refusals returns the refusals logged so far by reason, and the events
// lost to socket buffer overflows.
func (l *EventLog) Refusals() (byReason map[string]uint64, lost uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.byReason), l.lost
}

// Text renders the events as `show logging` prints them, newest last, in
// the form of IOS's access-list log lines:
//
//	Dec  1 21:50:03.123: %SEC-6-IPACCESSLOGP: list mail in seq 10 denied (connlimit) tcp 10.0.0.1(40002) -> 10.0.0.2(25)
func (l *EventLog) Text() string {
	evs := l.Events()
	l.mu.Lock()
	unread := l.unread
	l.mu.Unlock()
	var b strings.Builder
	if unread != "" {
		fmt.Fprintf(&b, "%% Warning: log events are not read: %s\n", unread)
	}
	fmt.Fprintf(&b, "Access-list log: %d events (last %d kept; at most %d per second per entry and reason)\n\n",
		len(evs), len(l.ring), nft.LogRate)
	for _, e := range evs {
		b.WriteString(e.Line() + "\n")
	}
	return b.String()
}

// Line is the event as one `show logging` line.
func (e LogEvent) Line() string {
	tag, list := "%SEC-6-IPACCESSLOGP", "list"
	if e.Entry.Family == acl.IPv6 {
		tag, list = "%IPV6_ACL-6-ACCESSLOGP", "list ipv6"
	}
	seq := " seq " + strconv.Itoa(e.Entry.Seq)
	if e.Entry.Seq == 0 {
		seq = "" // blocked sources: refused by the list, not an entry
	}
	return fmt.Sprintf("%s: %s: %s %s %s%s %s (%s) %s %s -> %s",
		e.Time.Local().Format("Jan _2 15:04:05.000"), tag, list, e.Entry.ACL, e.Entry.Dir, seq,
		e.Verdict(), e.Reason, protoName(e.Proto), endpoint(e.Src, e.SPort, e.Proto), endpoint(e.Dst, e.DPort, e.Proto))
}

func endpoint(a netip.Addr, port uint16, proto uint8) string {
	switch proto {
	case acl.ProtoTCP, acl.ProtoUDP, acl.ProtoSCTP:
		return a.String() + "(" + strconv.Itoa(int(port)) + ")"
	}
	return a.String()
}

func protoName(p uint8) string {
	switch p {
	case acl.ProtoTCP:
		return "tcp"
	case acl.ProtoUDP:
		return "udp"
	case acl.ProtoSCTP:
		return "sctp"
	case 1:
		return "icmp"
	case 58:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}

var (
	loggedRefusalsDesc = prometheus.NewDesc("slxsh_acl_logged_refusals_total",
		"Refusals by log entries that reached the agent through NFLOG, by reason (the kernel rate-limits them; slxsh_acl_refusals_total counts every refusal).",
		[]string{"reason"}, nil)
	logLostDesc = prometheus.NewDesc("slxsh_acl_log_lost_total",
		"Times NFLOG events were lost because the agent's socket buffer was full.", nil, nil)
	messagesDesc = prometheus.NewDesc("slxsh_refuse_messages_total",
		"Connections the refuse message responder answered with the line (answered) or reset because it was busy (shed).",
		[]string{"outcome"}, nil)
)

// eventDescs are the metrics of this file.
var eventDescs = []*prometheus.Desc{loggedRefusalsDesc, logLostDesc, messagesDesc}

// collectEvents exports the logged refusals and the responder's counts.
func (a *Agent) collectEvents(ch chan<- prometheus.Metric) {
	if l := a.opts.Events; l != nil {
		by, lost := l.Refusals()
		for _, r := range slices.Sorted(maps.Keys(by)) {
			ch <- prometheus.MustNewConstMetric(loggedRefusalsDesc, prometheus.CounterValue, float64(by[r]), r)
		}
		ch <- prometheus.MustNewConstMetric(logLostDesc, prometheus.CounterValue, float64(lost))
	}
	if r, ok := a.opts.Messages.(*Responder); ok {
		ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(r.Answered()), "answered")
		ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.CounterValue, float64(r.Shed()), "shed")
	}
}

package agent

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/nflog"
)

func logEvent(prefix string, sport uint16) nflog.Event {
	return nflog.Event{Time: time.Date(2026, 12, 1, 21, 50, 3, 0, time.Local), Prefix: prefix, Proto: 6,
		Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), SPort: sport, DPort: 25}
}

// The ring keeps the last events, oldest first; refusals are counted by
// reason; prefixes that are not ours are not kept.
func TestEventLogRing(t *testing.T) {
	l := NewEventLog(3, nil)
	l.Record(logEvent("permit acl=mail dir=in seq=10", 1))
	l.Record(logEvent("connlimit acl=mail dir=in seq=10", 2))
	l.Record(logEvent("not ours", 9))
	l.Record(logEvent("connlimit-full acl6=web dir=out seq=20", 3))
	l.Record(logEvent("connlimit acl=mail dir=in seq=10", 4))
	evs := l.Events()
	if len(evs) != 3 || evs[0].SPort != 2 || evs[2].SPort != 4 {
		t.Fatalf("events %+v, want sports 2, 3, 4", evs)
	}
	by, _ := l.Refusals()
	if by["connlimit"] != 2 || by["connlimit-full"] != 1 || by["permit"] != 0 {
		t.Errorf("refusals by reason %v", by)
	}
	text := l.Text()
	want := "Dec  1 21:50:03.000: %SEC-6-IPACCESSLOGP: list mail in seq 10 denied (connlimit) tcp 10.0.0.1(2) -> 10.0.0.2(25)\n"
	if !strings.Contains(text, want) {
		t.Errorf("show logging:\n%s\nwant a line\n%s", text, want)
	}
	if !strings.Contains(text, "%IPV6_ACL-6-ACCESSLOGP: list ipv6 web out seq 20 denied (connlimit-full)") {
		t.Errorf("show logging has no IPv6 line:\n%s", text)
	}
	l.Record(logEvent("blocked acl=mail dir=in implicit-blocked", 5))
	l.Record(logEvent("blocked acl=mail dir=in implicit-deny", 6)) // not a prefix of ours
	if text := l.Text(); !strings.Contains(text, "list mail in denied (blocked) tcp 10.0.0.1(5)") || strings.Contains(text, "(6)") {
		t.Errorf("show logging for blocked sources:\n%s", text)
	}
	l.Unavailable("bind nflog group 1: device or resource busy")
	if text := l.Text(); !strings.HasPrefix(text, "% Warning: log events are not read: bind nflog group 1") {
		t.Errorf("show logging without a listener:\n%s", text)
	}
	if strings.Index(text, "(2) ->") > strings.Index(text, "(4) ->") {
		t.Errorf("show logging is not oldest first:\n%s", text)
	}
}

package nft_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/netns"
	"github.com/slxsh/slxsh/internal/nft"
)

// applyAt compiles text for the zone and instant given and applies it.
func applyAt(t *testing.T, ns *netns.NS, text string, zone *time.Location, now time.Time) {
	t.Helper()
	mustApply(t, applier(ns), compileWith(t, text, nft.Options{Zone: zone, Now: now}))
}

// A periodic range that covers now enforces its entry's limit; one that
// does not leaves the entry out (the next entry decides). The zone is
// 5:30 east of UTC, so local and UTC days and hours differ.
func TestKernelTimeRangePeriodic(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22, 23)
	zone := time.FixedZone("IST", 5*3600+1800)
	now := time.Now()
	l := now.In(zone)
	m := l.Hour()*60 + l.Minute()
	hhmm := func(d int) string { return acl.FormatClock(((m+d)%1440 + 1440) % 1440) }
	applyAt(t, p.Server, fmt.Sprintf(`time-range on
 periodic daily %s to %s
!
time-range off
 periodic daily %s to %s
!
ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 1 time-range on
 seq 20 permit tcp any any eq 23 connlimit 1 time-range off
 seq 30 permit ip any any
`, hhmm(-60), hhmm(60), hhmm(120), hhmm(180))+onS0In, zone, now)
	ssh, telnet := hostPort(netns.PairServer4, 22), hostPort(netns.PairServer4, 23)
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset) // the range covers now: connlimit 1
	openN(t, p.Client, "", telnet, 3)        // it does not: permit ip any any
}

// An absolute range that ends in 2 s stops enforcing within 1 s of its
// end, by the kernel's clock alone. Its end is a whole local minute in a
// zone whose offset puts that minute 2 s from now.
func TestKernelTimeRangeAbsoluteEnds(t *testing.T) {
	p := netns.NewPair(t)
	server(t, p.Server, netns.PairServer4, 22)
	now := time.Now()
	end := now.Add(2 * time.Second).Truncate(time.Second)
	zone := time.FixedZone("T", -int(end.Unix()%60))
	le := end.In(zone)
	applyAt(t, p.Server, fmt.Sprintf(`time-range soon
 absolute end %s
!
ip access-list extended check
 seq 10 permit tcp any any eq 22 connlimit 1 time-range soon
 seq 20 permit ip any any
`, acl.DateTime{Year: le.Year(), Month: int(le.Month()), Day: le.Day(), Hour: le.Hour(), Minute: le.Minute()})+onS0In, zone, now)
	ssh := hostPort(netns.PairServer4, 22)
	p.Client.Expect(t, "", ssh, netns.Connected)
	p.Client.Expect(t, "", ssh, netns.Reset)
	if time.Now().After(end) {
		t.Fatal("the range ended before the limit was checked; the machine is too slow for this test")
	}
	took := p.Client.ConnectedBy(t, "", ssh, end, time.Second)
	t.Logf("admitted %v after the end", took.Round(time.Millisecond))
}

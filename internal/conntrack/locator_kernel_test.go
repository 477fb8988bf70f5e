package conntrack

import (
	"net/netip"
	"testing"

	"github.com/slxsh/slxsh/internal/netns"
)

func TestKernelRouteLocator(t *testing.T) {
	r := netns.NewRouted(t)
	l, err := NewRouteLocator(r.Router.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	routed := Flow{Src: netip.MustParseAddr("10.1.0.2"), Dst: netip.MustParseAddr("10.2.0.2")}
	if in, out := l.InIf(routed), l.OutIf(routed); in != "rc" || out != "rs" {
		t.Errorf("routed flow: in %q out %q, want rc rs", in, out)
	}
	toHost := Flow{Src: netip.MustParseAddr("fd01::2"), Dst: netip.MustParseAddr("fd01::1")}
	if in, out := l.InIf(toHost), l.OutIf(toHost); in != "rc" || out != "lo" {
		t.Errorf("flow to the router itself: in %q out %q, want rc lo", in, out)
	}
	l.Reset()
	if got := l.OutIf(routed); got != "rs" {
		t.Errorf("after Reset: out %q, want rs", got)
	}
}

package conntrack

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/slxsh/slxsh/internal/sockdiag"
)

// Destroyer ends a socket of the host itself; *sockdiag.Conn is one.
type Destroyer interface {
	Destroy(proto uint8, local, remote netip.AddrPort) error
}

// EndResult says how End ended the flows.
type EndResult struct {
	Destroyed int // host sockets reset at once (SOCK_DESTROY)
	Marked    int // flows marked for a reset on their next packet
}

// End ends flows with a TCP reset to both ends. A flow that is a socket of
// the host itself (inbound to it or originated by it) is destroyed at once
// through d; any other flow (routed, or a socket d cannot find) gets
// ResetMark so that the ruleset resets it on its next packet. End goes on
// after errors and returns the first.
func End(t Table, d Destroyer, flows []Flow) (EndResult, error) {
	var res EndResult
	var first error
	note := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	var mark []Flow
	for _, f := range flows {
		ok, err := destroyLocal(d, f)
		note(err)
		if ok {
			res.Destroyed++
			continue
		}
		mark = append(mark, f)
	}
	note(MarkReset(t, mark))
	res.Marked = len(mark)
	return res, first
}

// destroyLocal tries the flow as a connection to the host (the local socket
// is the reply direction's source) and as one from it (the original
// direction's source).
func destroyLocal(d Destroyer, f Flow) (bool, error) {
	if d == nil || (f.Proto != 6 && f.Proto != 17) {
		return false, nil
	}
	ends := [][2]netip.AddrPort{
		{netip.AddrPortFrom(f.ReplySrc, f.ReplySrcPort), netip.AddrPortFrom(f.ReplyDst, f.ReplyDstPort)},
		{netip.AddrPortFrom(f.Src, f.SrcPort), netip.AddrPortFrom(f.Dst, f.DstPort)},
	}
	for _, e := range ends {
		if !e[0].Addr().IsValid() || !e[1].Addr().IsValid() {
			continue
		}
		err := d.Destroy(f.Proto, e[0], e[1])
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, sockdiag.ErrNotFound) {
			return false, fmt.Errorf("end %s: %w", f, err)
		}
	}
	return false, nil
}

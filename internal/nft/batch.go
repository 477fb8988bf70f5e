package nft

import (
	"encoding/binary"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// A minimal extension of google/nftables' batch writer, so that a commit
// tells us the handles of the rules it added.
//
// Why: google/nftables v0.3.0 sets NLM_F_ECHO on every NEWRULE, and the
// kernel answers each with the rule as committed, handle included (what
// `nft --echo --handle` prints), but Conn.Flush reads those answers and
// drops them: AddRule never fills Handle. Reading the rules back instead
// costs seconds at 65k rules (the library's rule parser is slow). The
// library's own test hook, Conn.TestDial, lets a function stand in for the
// socket: batchWriter forwards the batch to a real netlink socket in the
// applier's namespace, reads every answer, keeps chain, handle and comment
// of each echoed rule (no expression parsing), and hands the
// acknowledgements and errors back to the library, whose handling of them
// is unchanged.

// ruleEcho is what batchWriter keeps of an echoed rule.
type ruleEcho struct {
	chain, comment string
	handle         uint64
}

// batchWriter is an nltest.Func (for nftables.WithTestDial) that sends
// batches through a real socket. Use one per transaction.
type batchWriter struct {
	netns int                   // namespace fd (0: the current one)
	opts  []nftables.SockOption // applied to the real socket (buffer sizes)

	echoes []ruleEcho // the rules the kernel echoed, in commit order
	err    error      // the receive error, if any (ENOBUFS: outcome unknown)
}

// conn returns a Conn whose Flush goes through b.
func (b *batchWriter) conn() (*nftables.Conn, error) {
	return nftables.New(nftables.WithTestDial(b.roundTrip))
}

var newRuleType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE)

// roundTrip sends req and returns the kernel's acknowledgements and
// errors. The library calls it again with no request when it wants more
// answers than it got at once: there are none (each call returns all).
func (b *batchWriter) roundTrip(req []netlink.Message) ([]netlink.Message, error) {
	if len(req) == 0 {
		return nil, nil
	}
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: b.netns})
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	for _, o := range b.opts {
		if err := o(nl); err != nil {
			return nil, fmt.Errorf("set socket option: %w", err)
		}
	}
	acks := 0
	msgs := make([]netlink.Message, len(req))
	for i, m := range req {
		m.Header.PID = 0 // the real socket's port id, not the fake one's
		msgs[i] = m
		if m.Header.Flags&netlink.Acknowledge != 0 {
			acks++
		}
	}
	if _, err := nl.SendMessages(msgs); err != nil {
		return nil, err
	}
	var out []netlink.Message
	// The kernel sends the echoes during the commit and every
	// acknowledgement after it; after an error it aborts the batch, and
	// the library needs no more than that error.
	for acks > 0 {
		got, err := nl.Receive()
		if err != nil {
			b.err = err
			return out, err
		}
		for _, m := range got {
			switch m.Header.Type {
			case newRuleType:
				if e, ok := parseRuleEcho(m.Data); ok {
					b.echoes = append(b.echoes, e)
				}
			case netlink.Error:
				m.Header.Flags &^= netlink.Multi
				out = append(out, m)
				acks--
			}
		}
	}
	return out, nil
}

// parseRuleEcho reads chain, handle and comment of a NEWRULE message.
func parseRuleEcho(data []byte) (ruleEcho, bool) {
	if len(data) < 4 {
		return ruleEcho{}, false
	}
	ad, err := netlink.NewAttributeDecoder(data[4:]) // after the nfgenmsg
	if err != nil {
		return ruleEcho{}, false
	}
	var e ruleEcho
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_RULE_CHAIN:
			e.chain = ad.String()
		case unix.NFTA_RULE_HANDLE:
			if b := ad.Bytes(); len(b) == 8 {
				e.handle = binary.BigEndian.Uint64(b)
			}
		case unix.NFTA_RULE_USERDATA:
			e.comment, _ = userdata.GetString(ad.Bytes(), userdata.TypeComment)
		}
	}
	return e, ad.Err() == nil && e.handle != 0
}

// byChain groups echoes by chain, in commit order.
func byChain(echoes []ruleEcho) map[string][]ruleEcho {
	out := map[string][]ruleEcho{}
	for _, e := range echoes {
		out[e.chain] = append(out[e.chain], e)
	}
	return out
}

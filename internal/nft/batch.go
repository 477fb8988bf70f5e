package nft

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Sending an Apply's batch (see wire) and reading the kernel's answers.
//
// The kernel echoes each added rule whose message asks for it (what `nft
// --echo --handle` prints): the rule as committed, handle included.
// batchWriter keeps chain, handle and comment of each (no expression
// parsing) for the rules of chains whose handles are worth knowing; the
// rest are not echoed. Only the batch's last message asks for an
// acknowledgement: nfnetlink processes a batch to its end even after an
// error and delivers every error and acknowledgement after the commit, so
// that one answer comes last. Reading one answer per message (two
// syscalls each) was most of the time of a large apply; reading the rules
// back instead costs seconds at 65k rules.

// answerTimeout bounds the wait for the answer to a batch (the commit of
// a 65k-rule table takes a few seconds).
const answerTimeout = 2 * time.Minute

// ruleEcho is what batchWriter keeps of an echoed rule.
type ruleEcho struct {
	chain, comment string
	handle         uint64
}

// batchWriter sends a transaction's batch through a real socket in the
// applier's namespace. Use one per transaction.
type batchWriter struct {
	netns int                     // namespace fd (0: the current one)
	opts  []nftables.SockOption   // applied to the real socket (buffer sizes)
	echo  func(chain string) bool // whether to echo the rules added to chain (nil: all)

	echoes []ruleEcho // the rules the kernel echoed, in commit order
	err    error      // the receive error, if any (ENOBUFS: outcome unknown)
}

var newRuleType = netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWRULE)

// send sends the batch of w through a real socket and returns the
// kernel's errors, each named by what its message did.
func (b *batchWriter) send(w *wire) error {
	buf, last, end, err := w.finish()
	if err != nil || buf == nil {
		return err
	}
	nl, err := b.dial()
	if err != nil {
		return err
	}
	defer nl.Close()
	rc, err := nl.SyscallConn()
	if err != nil {
		return err
	}
	if err := write(rc, buf); err != nil {
		return err
	}
	errs, err := b.receive(nl, last, end)
	if err != nil {
		return err
	}
	return w.kernelErrors(errs)
}

func (b *batchWriter) dial() (*netlink.Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: b.netns})
	if err != nil {
		return nil, err
	}
	for _, o := range b.opts {
		if err := o(nl); err != nil {
			nl.Close()
			return nil, fmt.Errorf("set socket option: %w", err)
		}
	}
	return nl, nil
}

// receive reads the kernel's answers to a batch of wire's, whose last
// message and end have the sequences last and end, up to the answer to the
// last message (or an error for the begin or the end: the batch was not
// processed). It keeps the echoed rules, and returns the errors by
// sequence; an error of its own (the socket's) is kept in b.err too.
//
// Why not netlink.Conn.Receive: it turns the first error answer into an
// error without its sequence, so that what failed could not be named.
func (b *batchWriter) receive(nl *netlink.Conn, last, end uint32) (map[uint32]netlink.Message, error) {
	errs := map[uint32]netlink.Message{}
	// Why a deadline: a batch the kernel never answers must not hold the
	// agent for ever (the outcome is then unknown, as after ENOBUFS).
	if err := nl.SetReadDeadline(time.Now().Add(answerTimeout)); err != nil {
		return nil, err
	}
	rc, err := nl.SyscallConn()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 64<<10)
	for done := false; !done; {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			// The size first: an error answer quotes its whole request.
			if n, _, rerr = unix.Recvfrom(int(fd), buf[:1], unix.MSG_PEEK|unix.MSG_TRUNC); rerr == nil && n > len(buf) {
				buf = make([]byte, n)
			}
			if rerr == nil {
				n, _, rerr = unix.Recvfrom(int(fd), buf, 0)
			}
			return rerr != unix.EAGAIN
		})
		if err == nil {
			err = rerr
		}
		if err != nil {
			b.err = fmt.Errorf("netlink receive: %w", err)
			return nil, b.err
		}
		for d := buf[:n]; len(d) >= nlmsgHdr; {
			size := int(binary.NativeEndian.Uint32(d))
			if size < nlmsgHdr || size > len(d) {
				break
			}
			var m netlink.Message
			if err := m.UnmarshalBinary(d[:size]); err == nil {
				switch m.Header.Type {
				case newRuleType:
					if e, ok := parseRuleEcho(m.Data); ok {
						b.echoes = append(b.echoes, e)
					}
				case netlink.Error:
					if errnoOf(m) != 0 {
						errs[m.Header.Sequence] = m
					}
					seq := m.Header.Sequence
					done = done || seq == last || seq == wireBegin || seq == end
				}
			}
			d = d[min(len(d), (size+3)&^3):]
		}
	}
	return errs, nil
}

// write sends buf in one sendmsg: a batch is processed from one message.
func write(rc syscall.RawConn, buf []byte) error {
	var serr error
	err := rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgN(int(fd), buf, nil, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}, 0)
		return serr != unix.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("send-messages: %w", err)
	}
	return nil
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

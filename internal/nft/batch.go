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
//
// On the wire it asks for less than the library does: only the last
// message of the batch is acknowledged (nfnetlink processes a batch to its
// end even after an error and delivers every error and acknowledgement
// after the commit, so that one answer comes last), and only the rules of
// chains whose handles are worth knowing (echo) are echoed. The library
// gets an acknowledgement for each message it asked one for: the kernel's
// error where there was one, else a success. Reading one answer per
// message (two syscalls each) was most of the time of a large apply.

// answerTimeout bounds the wait for the answer to a batch (the commit of
// a 65k-rule table takes a few seconds).
const answerTimeout = 2 * time.Minute

// ruleEcho is what batchWriter keeps of an echoed rule.
type ruleEcho struct {
	chain, comment string
	handle         uint64
}

// batchWriter is an nltest.Func (for nftables.WithTestDial) that sends
// batches through a real socket. Use one per transaction.
type batchWriter struct {
	netns int                     // namespace fd (0: the current one)
	opts  []nftables.SockOption   // applied to the real socket (buffer sizes)
	echo  func(chain string) bool // whether to echo the rules added to chain (nil: all)

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
	nl, err := b.dial()
	if err != nil {
		return nil, err
	}
	defer nl.Close()
	last := -1
	msgs := make([]netlink.Message, len(req))
	for i, m := range req {
		m.Header.PID = 0 // the real socket's port id, not the fake one's
		if m.Header.Flags&netlink.Acknowledge != 0 {
			last = i
			m.Header.Flags &^= netlink.Acknowledge
		}
		if m.Header.Type == newRuleType && b.echo != nil && !b.echo(ruleChain(m.Data)) {
			m.Header.Flags &^= netlink.Echo
		}
		msgs[i] = m
	}
	if last < 0 {
		_, err := sendBatch(nl, msgs)
		return nil, err
	}
	msgs[last].Header.Flags |= netlink.Acknowledge
	sent, err := sendBatch(nl, msgs)
	if err != nil {
		return nil, err
	}
	errs, err := b.receive(nl, sent[0].Header.Sequence, sent[last].Header.Sequence, sent[len(sent)-1].Header.Sequence)
	if err != nil {
		return nil, err
	}
	return acks(req, sent, errs), nil
}

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
	errs, err := b.receive(nl, wireBegin, last, end)
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

// receive reads the kernel's answers to a batch whose begin, last message
// and end have the sequences first, last and end, up to the answer to the
// last message (or an error for the begin or the end: the batch was not
// processed). It keeps the echoed rules, and returns the errors by
// sequence.
func (b *batchWriter) receive(nl *netlink.Conn, first, last, end uint32) (map[uint32]netlink.Message, error) {
	errs := map[uint32]netlink.Message{}
	// Why a deadline: a batch the kernel never answers must not hold the
	// agent for ever (the outcome is then unknown, as after ENOBUFS).
	if err := nl.SetReadDeadline(time.Now().Add(answerTimeout)); err != nil {
		return nil, err
	}
	for done := false; !done; {
		got, err := nl.Receive()
		if err != nil {
			b.err = err
			return nil, err
		}
		for _, m := range got {
			switch m.Header.Type {
			case newRuleType:
				if e, ok := parseRuleEcho(m.Data); ok {
					b.echoes = append(b.echoes, e)
				}
			case netlink.Error:
				m.Header.Flags &^= netlink.Multi
				if len(m.Data) >= 4 && binary.NativeEndian.Uint32(m.Data[:4]) != 0 {
					errs[m.Header.Sequence] = m
				}
				seq := m.Header.Sequence
				done = done || seq == last || seq == first || seq == end
			}
		}
	}
	return errs, nil
}

// acks returns what the library expects for the messages of req that
// asked for an acknowledgement, sent as sent: the kernel's error where
// errs holds one, else a success.
func acks(req, sent []netlink.Message, errs map[uint32]netlink.Message) []netlink.Message {
	var out []netlink.Message
	for i, m := range req {
		if m.Header.Flags&netlink.Acknowledge == 0 {
			continue
		}
		if e, ok := errs[sent[i].Header.Sequence]; ok {
			out = append(out, e)
			continue
		}
		ack := make([]byte, 4, 20) // error 0, then the request's header
		ack = binary.NativeEndian.AppendUint32(ack, uint32(16+len(m.Data)))
		ack = binary.NativeEndian.AppendUint16(ack, uint16(m.Header.Type))
		ack = binary.NativeEndian.AppendUint16(ack, uint16(m.Header.Flags))
		ack = binary.NativeEndian.AppendUint32(ack, sent[i].Header.Sequence)
		ack = binary.NativeEndian.AppendUint32(ack, sent[i].Header.PID)
		out = append(out, netlink.Message{Header: netlink.Header{Type: netlink.Error, Sequence: sent[i].Header.Sequence}, Data: ack})
	}
	return out
}

// sendBatch sends msgs in one sendmsg, as netlink.Conn.SendMessages does,
// with the headers it would complete (length, the socket's port id), and
// returns them. Why not SendMessages: it marshals each message into a
// slice of its own and appends it to a growing buffer; at 50k entries
// (a quarter million messages) that was a tenth of an apply's time of our
// own.
func sendBatch(nl *netlink.Conn, msgs []netlink.Message) ([]netlink.Message, error) {
	rc, err := nl.SyscallConn()
	if err != nil {
		return nl.SendMessages(msgs)
	}
	var pid uint32
	if err := rc.Control(func(fd uintptr) {
		if sa, err := unix.Getsockname(int(fd)); err == nil {
			if nsa, ok := sa.(*unix.SockaddrNetlink); ok {
				pid = nsa.Pid
			}
		}
	}); err != nil {
		return nil, err
	}
	n := 0
	for i := range msgs {
		h := &msgs[i].Header
		if h.Length == 0 {
			h.Length = uint32(nlmsgAlign(16 + len(msgs[i].Data)))
		}
		if int(h.Length) != nlmsgAlign(16+len(msgs[i].Data)) || h.Sequence == 0 {
			return nl.SendMessages(msgs) // not what the library sends: let netlink check it
		}
		if h.PID == 0 {
			h.PID = pid
		}
		n += int(h.Length)
	}
	buf := make([]byte, 0, n)
	for _, m := range msgs {
		h := m.Header
		buf = binary.NativeEndian.AppendUint32(buf, h.Length)
		buf = binary.NativeEndian.AppendUint16(buf, uint16(h.Type))
		buf = binary.NativeEndian.AppendUint16(buf, uint16(h.Flags))
		buf = binary.NativeEndian.AppendUint32(buf, h.Sequence)
		buf = binary.NativeEndian.AppendUint32(buf, h.PID)
		buf = append(buf, m.Data...)
		buf = append(buf, make([]byte, int(h.Length)-16-len(m.Data))...)
	}
	if err := write(rc, buf); err != nil {
		return nil, err
	}
	return msgs, nil
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

func nlmsgAlign(n int) int { return (n + 3) &^ 3 }

// ruleChain reads the chain of a NEWRULE message ("" if it has none).
func ruleChain(data []byte) string {
	if len(data) < 4 {
		return ""
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return ""
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_RULE_CHAIN {
			return ad.String()
		}
	}
	return ""
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

package conntrack

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/netns"
)

// event is one event message as the test reads it: its kind and what
// eventFilter looks at.
type event struct {
	Kind  string // new, update or destroy
	Proto uint8  // the IP protocol of the flow
	State uint8  // TCP state, 0 when the message carries none
	Mark  string // the mark attribute, "" when absent
}

func (e event) String() string { return fmt.Sprintf("%s/%d/%d/%s", e.Kind, e.Proto, e.State, e.Mark) }

// indexReads is eventFilter's contract, written out: new and destroy
// events, updates with a mark, and updates whose TCP state is outside
// ESTABLISHED..LAST_ACK.
func indexReads(e event) bool {
	switch {
	case e.Kind != "update", e.Mark != "":
		return true
	case e.State == 0:
		return false
	}
	return e.State < tcpEstablished || e.State > tcpLastAck
}

// readEvents reads every event queued on fd now.
func readEvents(t *testing.T, fd int) []event {
	t.Helper()
	var out []event
	buf := make([]byte, eventSlot)
	for {
		n, _, err := unix.Recvfrom(fd, buf, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b := buf[:n]
		typ, flags := binary.NativeEndian.Uint16(b[4:]), binary.NativeEndian.Uint16(b[6:])
		e := event{Kind: "update"}
		switch {
		case typ == ctMsgDelete:
			e.Kind = "destroy"
		case flags&unix.NLM_F_CREATE != 0:
			e.Kind = "new"
		}
		f, err := decodeFlow(b[unix.NLMSG_HDRLEN+4:])
		if err != nil {
			t.Fatal(err)
		}
		e.Proto, e.State = f.Proto, f.TCPState
		attrs(b[unix.NLMSG_HDRLEN+4:], func(typ uint16, d []byte) {
			if typ == ctaMark {
				e.Mark = strconv.Itoa(int(binary.BigEndian.Uint32(d)))
			}
		})
		out = append(out, e)
	}
}

// TestKernelEventFilter follows one TCP session through its whole life
// (handshake, an old mark set and cleared, close to TIME_WAIT, deleted)
// and one UDP exchange (new, its reply, deleted) on two event sockets of
// the namespace: one without a filter, and the index's. The index's gets
// exactly the events indexReads keeps of the other's, which include each
// kind the index needs and some it drops.
func TestKernelEventFilter(t *testing.T) {
	p := netns.NewPair(t)
	nftLoad(t, p.Server, trackOnly)
	p.Server.Listen(t, "10.0.0.2:22")
	p.Server.ListenUDP(t, "10.0.0.2:53")
	k := openKernel(t, p.Server)

	fd, err := netlinkSocket(p.Server.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := bindEvents(fd); err != nil {
		t.Fatal(err)
	}
	x, err := openEvents(p.Server.Fd())
	if err != nil {
		t.Fatal(err)
	}
	defer x.close()

	c := dial(t, p.Client, "10.0.0.2:22", 1)[0]
	f := flowsFrom(t, k, []net.Conn{c})[0]
	for _, m := range []uint32{OldMark, 0} {
		if err := k.SetMark(f, m); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	deadline := time.Now().Add(3 * time.Second)
	for f.TCPState != tcpTimeWait {
		if time.Now().After(deadline) {
			t.Fatalf("the closed session is in TCP state %d, not TIME_WAIT", f.TCPState)
		}
		time.Sleep(20 * time.Millisecond)
		all, err := k.Dump()
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range all {
			if g.SrcPort == f.SrcPort && g.Proto == 6 {
				f = g
			}
		}
	}
	p.Server.MustExec(t, "conntrack", "-D", "-p", "tcp", "--sport", strconv.Itoa(int(f.SrcPort)))
	if out, err := p.Client.ExchangeUDP("", "10.0.0.2:53", 2*time.Second); out != netns.Connected {
		t.Fatalf("udp exchange: %v (%v)", out, err)
	}
	p.Server.MustExec(t, "conntrack", "-D", "-p", "udp", "--dport", "53")
	time.Sleep(50 * time.Millisecond)

	all, got := readEvents(t, fd), readEvents(t, x.fd)
	var want, dropped []event
	for _, e := range all {
		if indexReads(e) {
			want = append(want, e)
		} else {
			dropped = append(dropped, e)
		}
	}
	t.Logf("all events: %v; the index's: %v", all, got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the filtered socket's events differ from the index's share of all (-want +got):\n%s", diff)
	}
	needs := []event{{Kind: "new", Proto: 6, State: 1}, {Kind: "update", Proto: 6, State: 2},
		{Kind: "update", Proto: 6, State: 3, Mark: strconv.Itoa(int(OldMark))}, {Kind: "update", Proto: 6, State: 3, Mark: "0"},
		{Kind: "update", Proto: 6, State: tcpTimeWait}, {Kind: "destroy", Proto: 6, State: tcpTimeWait},
		{Kind: "new", Proto: 17}, {Kind: "destroy", Proto: 17}}
	for _, n := range needs {
		if !containsEvent(got, n) {
			t.Errorf("the index was not sent %v", n)
		}
	}
	for _, d := range []event{{Kind: "update", Proto: 6, State: 3}, {Kind: "update", Proto: 17}} {
		if !containsEvent(dropped, d) {
			t.Errorf("no %v among all events: the test shows no filtering of it (%v)", d, all)
		}
	}
}

func containsEvent(es []event, e event) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

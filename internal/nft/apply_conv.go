package nft

import (
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// Conversions from our ruleset types to google/nftables ones, and the
// socket options of an apply.

// kernelSet is the library form of a set, as nft creates it for
// `set NAME { type T; size N; flags dynamic[,timeout]; [timeout D;] }`.
func kernelSet(t *nftables.Table, s *Set) *nftables.Set {
	if s.Map != nil {
		return kernelMapSet(t, s)
	}
	ks := &nftables.Set{Table: t, Name: s.Name, Dynamic: true, Size: s.Size,
		HasTimeout: s.Timeout > 0, Timeout: s.Timeout}
	switch s.Key {
	case KeyIPv4:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeIPAddr, binaryutil.BigEndian
	case KeyIPv6:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeIP6Addr, binaryutil.BigEndian
	case KeyProto:
		ks.KeyType = nftables.TypeInetProto
	case KeyNFProto:
		ks.KeyType, ks.KeyByteOrder = nftables.TypeNFProto, binaryutil.NativeEndian
	}
	return ks
}

func sameSet(have, want *nftables.Set) bool {
	if want.IsMap || isCounterMap(want) {
		// The key type reads back as "verdict" (see MapSetName).
		return have.IsMap == want.IsMap && isCounterMap(have) == isCounterMap(want) &&
			have.Interval && !have.Dynamic && !have.Constant
	}
	size := have.Size
	if want.Size == 0 && size == UnsizedSetCap {
		size = 0
	}
	return have.KeyType.Name == want.KeyType.Name && have.KeyType.Bytes == want.KeyType.Bytes &&
		have.Dynamic == want.Dynamic && size == want.Size &&
		have.HasTimeout == want.HasTimeout && have.Timeout == want.Timeout &&
		!have.Constant && !have.Interval && !have.IsMap
}

// UnsizedSetCap is the size the kernel reports for a set created without
// one once a dynset statement adds to it (nft_dynset gives such a set this
// maximum when the rule is added): the cap of such a set, which still
// starts small and grows on demand. A full one refuses further keys with
// ENFILE, as a declared size does (TestKernelUnsizedSetFullRefuses).
//
// Why a set kept across an apply can hold more than its size says: a set
// created with `size 65535` lists exactly as an unsized one bound to a
// dynset, so sameSet cannot tell them apart and keeps either (their caps
// are the same; only the preallocated table differs, until the set is
// re-created).
const UnsizedSetCap = 65535

// gateElements are the elements a set is created with: a gate starts
// closed (its family's nfproto), so that a new limit admits nothing until
// the agent has counted the sessions already open; the grace set starts
// with both families; every other set starts empty.
func gateElements(s *Set) []nftables.SetElement {
	switch s.Kind {
	case SetGate:
		return []nftables.SetElement{{Key: []byte{nfprotoByte(s.Entry.Family)}}}
	case SetGrace:
		// Each with the set's timeout: the grace ends by itself.
		return []nftables.SetElement{{Key: []byte{unix.NFPROTO_IPV4}}, {Key: []byte{unix.NFPROTO_IPV6}}}
	}
	return nil
}

// nfprotoByte is the nf_proto value of a family (NFPROTO_IPV4, NFPROTO_IPV6).
func nfprotoByte(f acl.Family) byte {
	if f == acl.IPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// nfprotoName is how nft prints a family's nf_proto value.
func nfprotoName(f acl.Family) string {
	if f == acl.IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

var hooks = map[string]*nftables.ChainHook{
	"prerouting":  nftables.ChainHookPrerouting,
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

// kernelChain is the library form of a chain: base chains are filter or
// nat chains with policy accept.
func kernelChain(t *nftables.Table, ch *Chain) *nftables.Chain {
	kc := &nftables.Chain{Name: ch.Name, Table: t}
	if ch.Hook != nil {
		accept := nftables.ChainPolicyAccept
		kc.Type = nftables.ChainTypeFilter
		if ch.Hook.Type == NATChain {
			kc.Type = nftables.ChainTypeNAT
		}
		kc.Hooknum = hooks[ch.Hook.Hook]
		kc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(ch.Hook.Priority))
		kc.Policy = &accept
	}
	return kc
}

func sameChain(have, want *nftables.Chain) bool {
	if (have.Hooknum == nil) != (want.Hooknum == nil) {
		return false
	}
	if want.Hooknum == nil {
		return true
	}
	return *have.Hooknum == *want.Hooknum && have.Priority != nil && *have.Priority == *want.Priority &&
		have.Type == want.Type && have.Policy != nil && *have.Policy == *want.Policy
}

func kernelRule(t *nftables.Table, ch *nftables.Chain, r *Rule) *nftables.Rule {
	kr := &nftables.Rule{Table: t, Chain: ch}
	for _, s := range r.Stmts {
		kr.Exprs = append(kr.Exprs, s.Exprs()...)
	}
	if r.Comment != "" {
		kr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.Comment)
	}
	return kr
}

// validate rejects what the library would silently turn into something
// else: an unknown hook (a regular chain instead) or set key.
func validate(rs *Ruleset) error {
	if rs == nil {
		return fmt.Errorf("no ruleset")
	}
	for _, ch := range rs.Chains {
		if ch.Hook != nil && hooks[ch.Hook.Hook] == nil {
			return fmt.Errorf("chain %s: unknown hook %q", ch.Name, ch.Hook.Hook)
		}
	}
	for _, s := range rs.Sets {
		if kernelSet(nil, s).KeyType.Name == "" {
			return fmt.Errorf("set %s: unknown key type %d", s.Name, s.Key)
		}
	}
	return nil
}

// messagesOf bounds the messages of a transaction that applies rs whole.
func messagesOf(rs *Ruleset) int {
	n := 64
	for _, ch := range rs.Chains {
		n += 2 + len(ch.Rules)
	}
	return n + len(rs.Sets) + len(rs.Counters)
}

// bufferOpts sizes the netlink socket buffers for a transaction of n
// messages (messagesOf).
func bufferOpts(n int) []nftables.SockOption {
	return SocketBuffers(n * 4096)
}

// SocketBuffers returns options that set a netlink socket's send and
// receive buffers to size bytes, kept between 4 MiB and 1 GiB.
//
// Why: the whole batch goes out in one sendmsg, which the kernel refuses
// with EMSGSIZE when it is larger than the send buffer; and the kernel
// queues an acknowledgement plus an echo of every added rule before we read
// any of them, so a small receive buffer overflows (ENOBUFS) and we could not
// even tell that the commit succeeded. The *FORCE options need
// CAP_NET_ADMIN, which changing the table needs anyway.
func SocketBuffers(size int) []nftables.SockOption {
	size = min(max(size, 4<<20), 1<<30)
	set := func(opt int) nftables.SockOption {
		return func(c *netlink.Conn) error {
			rc, err := c.SyscallConn()
			if err != nil {
				return err
			}
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, size)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return []nftables.SockOption{set(unix.SO_SNDBUFFORCE), set(unix.SO_RCVBUFFORCE)}
}

package nft

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The ruleset generation: the kernel counts committed nftables
// transactions per network namespace, and google/nftables v0.3.0 has no
// GetGen. Reading it costs one round trip, so a drift check can skip
// reading every rule back when nothing was committed since the last check.

// genRequest is NFT_MSG_GETGEN.
var genRequest = netlink.Message{
	Header: netlink.Header{
		Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
		Flags: netlink.Request,
	},
	Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}, // nfgenmsg
}

// generation returns the current ruleset generation of the namespace that
// c works in.
func generation(c *nftables.Conn) (uint32, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: c.NetNS})
	if err != nil {
		return 0, fmt.Errorf("open netlink: %w", err)
	}
	defer nl.Close()
	msgs, err := nl.Execute(genRequest)
	if err != nil {
		return 0, fmt.Errorf("get generation: %w", err)
	}
	for _, m := range msgs {
		if gen, ok := parseGen(m.Data); ok {
			return gen, nil
		}
	}
	return 0, errors.New("get generation: no generation in the answer")
}

func parseGen(data []byte) (uint32, bool) {
	if len(data) < 4 {
		return 0, false
	}
	ad, err := netlink.NewAttributeDecoder(data[4:])
	if err != nil {
		return 0, false
	}
	for ad.Next() {
		if ad.Type() == unix.NFTA_GEN_ID && len(ad.Bytes()) == 4 {
			return binary.BigEndian.Uint32(ad.Bytes()), true
		}
	}
	return 0, false
}

// largeDumps is a socket option that makes the kernel fill dumps (rules,
// objects) in 32 KiB messages instead of 4 KiB ones.
//
// Why: the kernel sizes each part of a dump by the largest buffer ever
// passed to recvmsg on the socket (up to 32 KiB), and mdlayher/netlink reads
// with a page-sized buffer. nf_tables restarts the walk of a chain from its
// first rule for every part, so reading N rules in small parts costs O(N²)
// in the kernel: 10k rules took about a second. One recvmsg with a 32 KiB
// buffer (on the answer to a GETGEN request, consumed here) raises the
// size for the rest of the socket's life.
func largeDumps(c *netlink.Conn) error {
	if _, err := c.Send(genRequest); err != nil {
		return fmt.Errorf("prime dump size: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), buf, 0)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return rerr
}

// dump sends an NFT_MSG_GET* dump request for table's objects of type msg
// (with attrs, already encoded) and returns the data of each answer (its
// nfgenmsg, then its attributes).
func dump(c *nftables.Conn, msg int, attrs []byte) ([][]byte, error) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: c.NetNS})
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	defer nl.Close()
	if err := largeDumps(nl); err != nil {
		return nil, err
	}
	msgs, err := nl.Execute(netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msg),
			Flags: netlink.Request | netlink.Dump,
		},
		Data: append([]byte{unix.NFPROTO_INET, unix.NFNETLINK_V0, 0, 0}, attrs...),
	})
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Data) >= 4 {
			out = append(out, m.Data)
		}
	}
	return out, nil
}

// setElements dumps the elements of set of table: the data of each
// NEWSETELEM answer.
func setElements(c *nftables.Conn, table, set string) ([][]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, set)
	attrs, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return dump(c, unix.NFT_MSG_GETSETELEM, attrs)
}

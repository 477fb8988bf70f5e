package agent

import (
	"fmt"
	"net"
	"os/user"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Peer is who is on the other end of a socket connection, as the kernel
// recorded it when the peer connected.
type Peer struct {
	PID    int32
	UID    uint32
	GID    uint32
	Groups []uint32 // supplementary groups (SO_PEERGROUPS)
}

// peerOf reads the peer credentials of a unix socket connection.
func peerOf(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("get raw conn: %w", err)
	}
	var p Peer
	var opErr error
	err = raw.Control(func(fd uintptr) {
		var cred *unix.Ucred
		cred, opErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if opErr != nil {
			return
		}
		p = Peer{PID: cred.Pid, UID: cred.Uid, GID: cred.Gid}
		p.Groups, opErr = peerGroups(int(fd))
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13): the supplementary groups the
// peer had when it connected. x/sys has no wrapper for it.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]uint32, 64)
	for range 4 {
		n := uint32(len(buf) * 4)
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch errno {
		case 0:
			return buf[:n/4], nil
		case unix.ERANGE: // n now holds the size needed
			buf = make([]uint32, n/4+1)
		default:
			return nil, errno
		}
	}
	return nil, unix.ERANGE
}

// Authorizer decides whether a peer may change the configuration: root and
// members of the admin group may; everybody else may only look.
type Authorizer struct {
	group    string // group name, for messages
	gid      uint32
	hasGroup bool // false when the group does not exist: only root is admin
}

// NewAuthorizer resolves the admin group by name. A group that does not
// exist is not an error (a fresh install has no slxsh group yet): then only
// root may change the configuration, and the returned warning says so.
func NewAuthorizer(group string) (*Authorizer, string) {
	a := &Authorizer{group: group}
	if group == "" {
		return a, ""
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		return a, fmt.Sprintf("admin group %q not found: only root may change the configuration", group)
	}
	gid, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return a, fmt.Sprintf("admin group %q has gid %q: only root may change the configuration", group, g.Gid)
	}
	a.gid, a.hasGroup = uint32(gid), true
	return a, ""
}

// MayChange reports whether p may change the configuration.
func (a *Authorizer) MayChange(p Peer) bool {
	if p.UID == 0 {
		return true
	}
	if !a.hasGroup {
		return false
	}
	if p.GID == a.gid {
		return true
	}
	for _, g := range p.Groups {
		if g == a.gid {
			return true
		}
	}
	return false
}

package agent

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestMayChange(t *testing.T) {
	a := &Authorizer{group: "slxsh", gid: 1234, hasGroup: true}
	for _, tc := range []struct {
		p    Peer
		want bool
	}{
		{Peer{UID: 0, GID: 0}, true},
		{Peer{UID: 1000, GID: 1234}, true},
		{Peer{UID: 1000, GID: 1000, Groups: []uint32{27, 1234}}, true},
		{Peer{UID: 1000, GID: 1000, Groups: []uint32{27}}, false},
		{Peer{UID: 65534, GID: 65534}, false},
	} {
		if got := a.MayChange(tc.p); got != tc.want {
			t.Errorf("MayChange(%+v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	none, warn := NewAuthorizer("no-such-group-slxsh-test")
	if warn == "" {
		t.Error("missing group: no warning")
	}
	if none.MayChange(Peer{UID: 1000, GID: 0}) || !none.MayChange(Peer{UID: 0}) {
		t.Error("without the group only root may change")
	}
}

func TestPeerCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := net.Dial("unix", path)
		if err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := peerOf(c)
	if err != nil {
		t.Fatal(err)
	}
	if int(p.UID) != os.Getuid() || int(p.GID) != os.Getgid() || int(p.PID) != os.Getpid() {
		t.Errorf("peer = %+v, want uid %d gid %d pid %d", p, os.Getuid(), os.Getgid(), os.Getpid())
	}
	groups, _ := os.Getgroups()
	if len(p.Groups) != len(groups) {
		t.Errorf("peer groups %v, process groups %v", p.Groups, groups)
	}
}

package nft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Elements changed by someone else. Drift sees that another process
// committed (the ruleset generation moved), not what it changed; a limit
// set flushed (`nft flush set`, `nft delete element`) keeps its rules, and
// a key that connects again before the agent's conntrack check is back in
// the set with a count of one: the check finds it present and the limit
// stays open. The kernel tells the listeners of NFNLGRP_NFTABLES every set
// element a transaction added or deleted, then the generation with the
// committing process (the packet path's own adds are never told, measured
// with `nft monitor`): WatchElements listens, and Tampered returns the sets
// of our table whose elements a process other than this one changed.

// watchBuffer is the socket buffer of the element watcher: a flush of a
// full set tells 65535 elements (about 100 bytes each).
const watchBuffer = 8 << 20

// WatchElements records, until ctx ends, the sets of the table whose
// elements another process's transactions changed (Tampered). It returns
// when the socket cannot be opened or read.
func (a *Applier) WatchElements(ctx context.Context) error {
	rc, err := a.readConn() // for its namespace
	if err != nil {
		return err
	}
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: rc.NetNS})
	if err != nil {
		return fmt.Errorf("watch set elements: %w", err)
	}
	defer c.Close()
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		return fmt.Errorf("watch set elements: %w", err)
	}
	// Forced past net.core.rmem_max (CAP_NET_ADMIN, which the agent has);
	// else as large as the host allows.
	if err := SocketBuffers(watchBuffer)[1](c); err != nil {
		c.SetReadBuffer(watchBuffer)
	}
	a.tamperMu.Lock()
	if a.watching {
		a.tamperLost = true // listening again: what came meanwhile is not known
	}
	a.watching, a.watchConn = true, c
	a.tamperMu.Unlock()
	defer func() {
		a.tamperMu.Lock()
		a.watchConn = nil
		a.tamperMu.Unlock()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
			c.Close()
		case <-stop:
		}
	}()
	self, table := ownName(), a.table
	var touched []string // set names of the transaction being told
	for {
		msgs, err := c.Receive()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, unix.ENOBUFS):
			// Events were lost: which sets they named is not known.
			a.tamperMu.Lock()
			a.tamperLost = true
			a.tamperMu.Unlock()
			touched = nil
			continue
		case err != nil:
			return fmt.Errorf("watch set elements: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
				continue
			}
			switch int(m.Header.Type & 0xff) {
			case unix.NFT_MSG_NEWSETELEM, unix.NFT_MSG_DELSETELEM:
				if m.Data[0] != unix.NFPROTO_INET {
					continue
				}
				if ts := attrStrings(m.Data[4:], unix.NFTA_SET_ELEM_LIST_TABLE, unix.NFTA_SET_ELEM_LIST_SET); ts[0] == table {
					touched = append(touched, ts[1])
				}
			case unix.NFT_MSG_NEWGEN:
				if len(touched) > 0 && attrStrings(m.Data[4:], unix.NFTA_GEN_PROC_NAME)[0] != self {
					a.tamperMu.Lock()
					if a.tampered == nil {
						a.tampered = map[string]bool{}
					}
					for _, s := range touched {
						a.tampered[s] = true
					}
					a.tamperMu.Unlock()
				}
				touched = nil
			}
		}
	}
}

// ownName is what the kernel names this process's transactions by, in a
// NEWGEN message. It names the committing task by its thread id in the
// initial PID namespace (NFTA_GEN_PROC_PID: Go sends from any thread, and
// in a PID namespace of its own the agent knows other ids) and by its name
// (NFTA_GEN_PROC_NAME), which every thread of a Go process shares. So a
// commit is ours when it carries our name; a foreign process of the same
// name is not one that changes our sets.
func ownName() string {
	comm, _ := os.ReadFile("/proc/self/comm")
	name := strings.TrimSpace(string(comm))
	if name == "" { // no /proc: the kernel names a task by its program's file, cut to 15 bytes
		name = filepath.Base(os.Args[0])
		name = name[:min(len(name), 15)]
	}
	return name
}

// watchPauseMessages is the size of the agent's own transactions (in
// netlink messages) from which WatchElements stops listening while the
// kernel commits them: with a listener the kernel builds a notification of
// every rule, set and element a commit adds, which made a 10k-entry apply
// a quarter slower, and the watcher would only read them to drop them.
const watchPauseMessages = 1000

// pauseWatch stops WatchElements listening for a transaction of n
// messages of ours, when that is large or flushes limit sets (a flush is
// one message, and a notification per element), and returns what listens
// again after it: with onlyOurs false (another commit may have come
// meanwhile, or the outcome is not known) the events of the pause count
// as lost.
func (a *Applier) pauseWatch(n int, flushes bool) (resume func(onlyOurs bool)) {
	a.tamperMu.Lock()
	c := a.watchConn
	a.tamperMu.Unlock()
	if c == nil || n < watchPauseMessages && !flushes || c.LeaveGroup(unix.NFNLGRP_NFTABLES) != nil {
		return func(bool) {}
	}
	return func(onlyOurs bool) {
		err := c.JoinGroup(unix.NFNLGRP_NFTABLES)
		if err != nil || !onlyOurs {
			a.tamperMu.Lock()
			a.tamperLost = true
			a.tamperMu.Unlock()
		}
	}
}

// Tampered returns (and forgets) the sets of the table whose elements
// another process added or deleted since the last call, and whether
// WatchElements lost events meanwhile (then any set may have been).
// Without WatchElements it returns nothing.
func (a *Applier) Tampered() (sets []string, lost bool) {
	a.tamperMu.Lock()
	defer a.tamperMu.Unlock()
	for s := range a.tampered {
		sets = append(sets, s)
	}
	lost = a.tamperLost
	a.tampered, a.tamperLost = nil, false
	return sets, lost
}

// attrStrings returns the string attributes of the given types among the
// top-level netlink attributes of b ("" for one that is missing).
func attrStrings(b []byte, types ...uint16) []string {
	out := make([]string, len(types))
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return out
	}
	for ad.Next() {
		if i := slices.Index(types, ad.Type()); i >= 0 {
			out[i] = ad.String()
		}
	}
	return out
}

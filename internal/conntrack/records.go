package conntrack

import (
	"net/netip"
)

// The session index's records (Index): one map entry per flow, keyed by
// its original tuple and zone, with no pointers so that the collector
// never scans them. IPv4 flows, nearly all of them on most hosts, are
// keyed by 4-byte addresses: an entry is 36 bytes (it was 80 with 16-byte
// addresses and a slice of slots), about 5 MB at 100k flows.

// tuple4 is the original tuple and zone of an IPv4 flow.
type tuple4 struct {
	src, dst     [4]byte
	sport, dport uint16
	zone         uint16
	proto        uint8
}

// tuple6 is the original tuple and zone of an IPv6 flow (or, were
// conntrack ever to report one, of a flow with one IPv4 and one IPv6
// address).
type tuple6 struct {
	src, dst     [16]byte
	sport, dport uint16
	zone         uint16
	proto        uint8
}

// tuple is what the index needs of either key: the Flow it stands for.
type tuple interface {
	comparable
	// flow rebuilds the Flow that attribution and matching need (no
	// reply tuple, no start time).
	flow(r flowRec) Flow
}

// tuple4Of is f's IPv4 key; ok is false unless both addresses are IPv4
// (IPv4-mapped IPv6 addresses count as IPv4, as Flow.Is6 has it).
func tuple4Of(f Flow) (k tuple4, ok bool) {
	src, dst := f.Src.Unmap(), f.Dst.Unmap()
	if !src.Is4() || !dst.Is4() {
		return k, false
	}
	return tuple4{src: src.As4(), dst: dst.As4(), sport: f.SrcPort, dport: f.DstPort, zone: f.Zone, proto: f.Proto}, true
}

func tuple6Of(f Flow) tuple6 {
	return tuple6{src: f.Src.As16(), dst: f.Dst.As16(), sport: f.SrcPort, dport: f.DstPort, zone: f.Zone, proto: f.Proto}
}

func (k tuple4) flow(r flowRec) Flow {
	return Flow{Proto: k.proto, Src: netip.AddrFrom4(k.src), Dst: netip.AddrFrom4(k.dst), SrcPort: k.sport,
		DstPort: k.dport, Zone: k.zone, Mark: r.mark, TCPState: r.state, Unreplied: r.unreplied}
}

func (k tuple6) flow(r flowRec) Flow {
	return Flow{Proto: k.proto, Src: netip.AddrFrom16(k.src), Dst: netip.AddrFrom16(k.dst), SrcPort: k.sport,
		DstPort: k.dport, Zone: k.zone, Mark: r.mark, TCPState: r.state, Unreplied: r.unreplied}
}

// flowRec is what the index keeps of a flow besides its tuple: what counts
// and where. A flow counts under one key slot of each limit it falls
// under: nearly always one, kept inline (first); the others, if any, in
// Index.more.
type flowRec struct {
	mark  uint32
	gen   uint32 // the dump that last saw it (or a later one, for events)
	first int32  // its first slot + 1 (0: it counts nowhere)
	more  int32  // its other slots: Index.more[more-1] (0: none)
	state uint8  // TCP state, 0 unknown
	// unreplied: no reply seen yet (Flow.Unreplied; once seen, for good).
	unreplied bool
	// silent is true until an event of the flow arrives: the kernel only
	// sends events of entries created while someone listened
	// (nf_conntrack_events = 2 attaches the event extension at creation),
	// so a flow first seen in a dump may never report its end.
	silent bool
}

// keySlot is one limit key with its open sessions and how many of them are
// old (OldMark).
type keySlot struct {
	limit         int32 // Index.lims[limit]
	key           string
	sessions, old int32
	refs          int32 // flows that count or may count here
}

// slotKey finds a key slot: its limit (as keySlot.limit) and key.
type slotKey struct {
	limit int32
	key   string
}

// putLocked records f (from a dump: whole; from an event: the fields it
// carries) and moves its counts.
func (x *Index) putLocked(f Flow, whole bool) {
	if k, ok := tuple4Of(f); ok {
		putIn(x, x.v4, k, f, whole)
		return
	}
	putIn(x, x.v6, tuple6Of(f), f, whole)
}

func (x *Index) dropLocked(f Flow) {
	if k, ok := tuple4Of(f); ok {
		dropIn(x, x.v4, k)
		return
	}
	dropIn(x, x.v6, tuple6Of(f))
}

// putIn is putLocked on one family's records.
//
// Why a missing TCP state keeps the old one: an update event carries
// protoinfo only when the state changed. A missing mark is 0: ctnetlink
// puts the mark in every event whose mark changed or is not 0.
func putIn[K tuple](x *Index, m map[K]flowRec, k K, f Flow, whole bool) {
	r, had := m[k]
	if had {
		x.countLocked(k.flow(r), r, -1)
	}
	r.mark, r.gen = f.Mark, x.gen
	if f.TCPState != 0 || whole {
		r.state = f.TCPState
	}
	// A reply, once seen, stays seen (an event without the status reads as
	// replied: the flow then counts, as before ghosts were told apart).
	r.unreplied = f.Unreplied && (r.unreplied || !had || whole)
	if whole {
		r.silent = r.silent || !had
	} else {
		r.silent = false
	}
	if !had {
		x.attributeLocked(&r, k.flow(r))
	}
	m[k] = r
	x.countLocked(k.flow(r), r, +1)
}

func dropIn[K tuple](x *Index, m map[K]flowRec, k K) {
	r, ok := m[k]
	if !ok {
		return
	}
	x.countLocked(k.flow(r), r, -1)
	delete(m, k)
	x.releaseLocked(r)
}

// watched reports whether the index must dump again to see what becomes
// of r: it is silent, falls under some limit key, and is open or in CLOSE.
//
// Why only those: the index dumps again every second while it holds such
// flows, and the end of a flow that counts nowhere changes no view. A
// host's flows that were open before the agent listened would otherwise
// have it dump the whole table every second for as long as the longest of
// them lives.
//
// Why CLOSE: a SYN on an entry in CLOSE (reset by the other side) reopens
// that same entry (nf_conntrack_proto_tcp), which then counts again and,
// silent, sends no event of it; CLOSE lasts 10 s. An entry in TIME_WAIT
// is never reopened in place: the kernel kills it and makes a new one,
// which reports its events. (A client that keeps retrying from one port
// against a port that resets it keeps such an entry, and the dumps,
// going: as long-lived silent flows do.)
func watched[K tuple](k K, r flowRec) bool {
	return r.silent && r.first != 0 && (k.flow(r).Open() || r.state == tcpClose)
}

// sweep drops the records of m the last dump did not see and returns
// how many of the others are watched.
func sweep[K tuple](x *Index, m map[K]flowRec) (silent int) {
	for k, r := range m {
		switch {
		case r.gen != x.gen:
			dropIn(x, m, k)
		case watched(k, r):
			silent++
		}
	}
	return silent
}

// reattributeLocked places every record again under the current bindings
// and routes (no dump).
func (x *Index) reattributeLocked() {
	x.resetSlots()
	x.more, x.freeMore = nil, nil
	x.silent = reattribute(x, x.v4) + reattribute(x, x.v6)
}

// reattribute is reattributeLocked on one family's records; it returns
// how many are watched.
func reattribute[K tuple](x *Index, m map[K]flowRec) (silent int) {
	for k, r := range m {
		r.first, r.more = 0, 0
		x.attributeLocked(&r, k.flow(r))
		m[k] = r
		x.countLocked(k.flow(r), r, +1)
		if watched(k, r) {
			silent++
		}
	}
	return silent
}

// eachSlot calls fn with every slot r counts under.
func (x *Index) eachSlot(r flowRec, fn func(s int32)) {
	if r.first == 0 {
		return
	}
	fn(r.first - 1)
	if r.more != 0 {
		for _, s := range x.more[r.more-1] {
			fn(s)
		}
	}
}

// countLocked adds (d=+1) or takes away (d=-1) the flow's session from
// its keys; only open flows count, as for nf_conncount. f is the record's
// flow (for its state).
func (x *Index) countLocked(f Flow, r flowRec, d int32) {
	if !f.Open() {
		return
	}
	old := int32(0)
	if r.mark&OldMark != 0 {
		old = d
	}
	x.eachSlot(r, func(s int32) {
		x.slots[s].sessions += d
		x.slots[s].old += old
	})
}

// attributeLocked sets r's slots to those of the keys f counts under in
// the bindings it passes, taking a reference on each.
func (x *Index) attributeLocked(r *flowRec, f Flow) {
	r.first, r.more = 0, 0
	for i, b := range x.bs {
		if len(x.walks[i].steps) == 0 || !b.passes(f, x.loc) {
			continue
		}
		x.walks[i].keys(f, func(k KeyID) {
			s := x.slotLocked(k)
			if r.first == 0 {
				r.first = s + 1
				return
			}
			if r.more == 0 {
				r.more = x.newMoreLocked()
			}
			x.more[r.more-1] = append(x.more[r.more-1], s)
		})
	}
}

// newMoreLocked returns an empty list of Index.more (+1).
func (x *Index) newMoreLocked() int32 {
	if n := len(x.freeMore); n > 0 {
		i := x.freeMore[n-1]
		x.freeMore = x.freeMore[:n-1]
		return i + 1
	}
	x.more = append(x.more, nil)
	return int32(len(x.more))
}

// slotLocked returns the slot of key k with one more reference, creating
// it. A slot lives while flows refer to it (its sessions may be 0: flows in
// TIME_WAIT).
func (x *Index) slotLocked(k KeyID) int32 {
	l, ok := x.limOf[k.LimitID]
	if !ok {
		l = int32(len(x.lims))
		x.lims = append(x.lims, k.LimitID)
		x.limOf[k.LimitID] = l
	}
	sk := slotKey{l, k.Key}
	s, ok := x.slotOf[sk]
	if !ok {
		if n := len(x.free); n > 0 {
			s, x.free = x.free[n-1], x.free[:n-1]
			x.slots[s] = keySlot{limit: l, key: k.Key}
		} else {
			s = int32(len(x.slots))
			x.slots = append(x.slots, keySlot{limit: l, key: k.Key})
		}
		x.slotOf[sk] = s
	}
	x.slots[s].refs++
	return s
}

// releaseLocked drops a flow's references on its slots, freeing those no
// flow refers to any more, and its list of other slots.
func (x *Index) releaseLocked(r flowRec) {
	x.eachSlot(r, func(s int32) {
		if x.slots[s].refs--; x.slots[s].refs == 0 {
			delete(x.slotOf, slotKey{x.slots[s].limit, x.slots[s].key})
			x.slots[s] = keySlot{}
			x.free = append(x.free, s)
		}
	})
	if r.more != 0 {
		x.more[r.more-1] = nil
		x.freeMore = append(x.freeMore, r.more-1)
	}
}

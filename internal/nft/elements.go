package nft

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/acl"
)

// This file is the Applier's side of the set elements that the agent
// writes, next to Apply's rules and sets: the one place that talks netlink
// to our table. Load-limit flags (SetLoad), blocked sources (SetBlocked),
// and the reservations of connlimit sets (gates and depth maps; what they
// hold is planned in internal/conntrack).

// SetFlag puts (on) or takes out (off) the family's nfproto element of the
// agent-armed set name in the applier's table, in one transaction, and only
// when the set does not already say so (a read does not commit anything, so
// calling it every second costs no transaction). It reports whether it
// changed the set.
func (a *Applier) SetFlag(name string, f acl.Family, on bool) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return false, err
	}
	set, have, err := a.flagLocked(c, name, f)
	if err != nil {
		return false, err
	}
	if have == on {
		return false, nil
	}
	el := []nftables.SetElement{{Key: []byte{nfprotoByte(f)}}}
	if on {
		err = c.SetAddElements(set, el)
	} else {
		err = c.SetDeleteElements(set, el)
	}
	if err != nil {
		return false, fmt.Errorf("queue element of %s: %w", name, err)
	}
	if err := a.flushLocked(c); err != nil {
		return false, fmt.Errorf("set %s: %w: %w", name, ErrRefused, err)
	}
	return true, nil
}

// Flag reads a load-limit flag set (SetLoad): whether the family's
// element is in it (the entry refuses).
func (a *Applier) Flag(name string, f acl.Family) (bool, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return false, err
	}
	_, on, err := a.flagLocked(c, name, f)
	return on, err
}

// flagLocked reads a flag set on c: the set and whether f's element is in it.
func (a *Applier) flagLocked(c *nftables.Conn, name string, f acl.Family) (*nftables.Set, bool, error) {
	set := a.libSet(&Set{Name: name, Key: KeyNFProto, Size: 2})
	elems, err := c.GetSetElements(set)
	if err != nil {
		return nil, false, fmt.Errorf("list set %s: %w", name, err)
	}
	key := nfprotoByte(f)
	return set, slices.ContainsFunc(elems, func(e nftables.SetElement) bool { return len(e.Key) > 0 && e.Key[0] == key }), nil
}

// blockedLocked lists the addresses in a blocked set (SetBlocked) of the
// applier's table. A set that does not exist holds nothing.
func (a *Applier) blockedLocked(c *nftables.Conn, name string, f acl.Family) ([]netip.Addr, error) {
	elems, err := a.elements(c, a.libSet(&Set{Name: name, Key: addrKey(f)}))
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, e := range elems {
		if addr, ok := netip.AddrFromSlice(e.Key); ok && (addr.Is4() == (f == acl.IPv4)) {
			out = append(out, addr)
		}
	}
	return out, nil
}

// BlockedElem is an element of a blocked set: a source (or, in a full
// flag set, no address) and the time until it expires.
type BlockedElem struct {
	Addr netip.Addr
	Left time.Duration
}

// BlockedLeft lists the elements of a set with timeouts (blocked sources,
// a full flag, rate and quota windows) of the applier's table with the
// time they have left; an nf_proto element has no address. A set that does
// not exist holds nothing.
func (a *Applier) BlockedLeft(name string, f acl.Family) ([]BlockedElem, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	elems, err := a.elements(c, a.libSet(&Set{Name: name, Key: addrKey(f)}))
	if err != nil {
		return nil, err
	}
	var out []BlockedElem
	for _, e := range elems {
		switch addr, ok := netip.AddrFromSlice(e.Key); {
		case len(e.Key) == 1: // nf_proto: a flag, or the key of a total
			out = append(out, BlockedElem{Left: e.Expires})
		case ok && addr.Is4() == (f == acl.IPv4):
			out = append(out, BlockedElem{Addr: addr, Left: e.Expires})
		}
	}
	return out, nil
}

// RestoreBlocked adds elements to a blocked set (a source each, or the
// full flag: no address) with the time each has left, in one transaction:
// the agent puts back the lockouts that someone else's change took.
func (a *Applier) RestoreBlocked(name string, f acl.Family, elems []BlockedElem) error {
	if len(elems) == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return err
	}
	s := a.libSet(&Set{Name: name, Key: addrKey(f)})
	s.HasTimeout = true // each element carries its own timeout
	add := make([]nftables.SetElement, 0, len(elems))
	for _, e := range elems {
		key := []byte{nfprotoByte(f)}
		if e.Addr.IsValid() {
			key = e.Addr.AsSlice()
		}
		add = append(add, nftables.SetElement{Key: key, Timeout: max(e.Left, time.Millisecond)})
	}
	if err := c.SetAddElements(s, add); err != nil {
		return fmt.Errorf("queue elements of %s: %w", name, err)
	}
	if err := a.flushLocked(c); err != nil {
		return fmt.Errorf("restore %s: %w: %w", name, ErrRefused, err)
	}
	return nil
}

// Unblock deletes addresses from a blocked set, or every element when
// addrs is nil, in one transaction. Addresses not in the set are skipped.
func (a *Applier) Unblock(name string, f acl.Family, addrs []netip.Addr) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return err
	}
	have, err := a.blockedLocked(c, name, f)
	if err != nil || len(have) == 0 {
		return err
	}
	var del []nftables.SetElement
	for _, h := range have {
		if addrs == nil || slices.Contains(addrs, h) {
			del = append(del, nftables.SetElement{Key: h.AsSlice()})
		}
	}
	if len(del) == 0 {
		return nil
	}
	if err := c.SetDeleteElements(a.libSet(&Set{Name: name, Key: addrKey(f)}), del); err != nil {
		return fmt.Errorf("queue elements of %s: %w", name, err)
	}
	if err := a.flushLocked(c); err != nil {
		return fmt.Errorf("unblock in %s: %w: %w", name, ErrRefused, err)
	}
	return nil
}

// flushLocked commits the batch queued on c. When the Applier knew the
// table in sync and nobody else committed meanwhile, it still knows it
// afterwards (the commit changed elements only), so that Drift does not
// mistake the agent's own element writes for someone else's.
func (a *Applier) flushLocked(c *nftables.Conn) error {
	before, berr := generation(c)
	if err := c.Flush(); err != nil {
		return err
	}
	after, err := generation(c)
	ours := berr == nil && err == nil && after == before+1
	if ours && a.sync.ok && a.sync.gen == before {
		a.sync.gen = after
		a.saveState(c, false)
	}
	if ours && a.freshGen == before {
		a.freshGen = after // our own elements: the caller says which fresh sets it filled
	} else {
		a.fresh, a.opened = nil, nil
	}
	return nil
}

// freshNow returns the limit sets known fresh (see Applier.fresh) at the
// kernel's generation now.
// A nil result means nothing is known (then Gated reads every gate); an
// empty one that no limit is fresh, and a.opened holds.
func (a *Applier) freshNow(c *nftables.Conn) map[string]bool {
	if a.fresh == nil {
		return nil
	}
	if gen, err := generation(c); err != nil || gen != a.freshGen {
		a.fresh, a.opened = nil, nil
	}
	return a.fresh
}

// ForeignCommits counts the commits of others that Drift has seen.
func (a *Applier) ForeignCommits() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.foreign
}

// LimitKeys returns the keys that limit set s holds (each with the count
// of its sessions in the kernel), as Reservation keys are spelled.
func (a *Applier) LimitKeys(s *Set) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	els, err := a.stableElements(c, a.libSet(s))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range els {
		if k, ok := keyString(s, e.Key); ok {
			out = append(out, k)
		}
	}
	return out, nil
}

// SetFill returns how many elements each set that the packet path writes
// into (limit, layer, rate and blocked sets) holds now, by name: a full
// set refuses new keys (the "-full" rules), and the fill says how close
// each is (metrics).
func (a *Applier) SetFill(sets []*Set) (map[string]int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range sets {
		if !s.Kind.Filled() {
			continue
		}
		els, err := a.elements(c, a.libSet(s))
		if err != nil {
			return nil, err
		}
		out[s.Name] = len(els)
	}
	return out, nil
}

// Filled reports whether the packet path adds keys to sets of this kind.
func (k SetKind) Filled() bool { return k == SetConnlimit || k == SetRate || k == SetBlocked }

// Capacity is how many keys the set can hold: its size, or the kernel's
// cap for a dynamic set created without one.
func (s *Set) Capacity() int {
	if s.Size == 0 {
		return UnsizedSetCap
	}
	return int(s.Size)
}

// TotalKey is the key of `connlimit N total` in a Reservation.
const TotalKey = acl.TotalKey

// Reservation is a key of a limit set that the agent holds at a depth: it
// had Depth old sessions (or, above ExactLayers, a few fewer) when its
// count began; Depth equal to the limit set's Over means its old sessions
// fill the limit. Keys are spelled as the session side spells them: an
// address, a prefix ("10.0.0.0/24") or TotalKey.
type Reservation struct {
	Set   string
	Key   string
	Depth int
}

// memberSets are the reservation sets a key at depth d of limit set s is
// in: S_r, and S_rf when its old sessions fill the limit, or S_rJ for
// every layer J up to d.
func memberSets(s *Set, d int) []string {
	out := []string{ReservedSetName(s.Name)}
	if d >= s.Over {
		return append(out, FullSetName(s.Name))
	}
	for _, j := range Layers(s.Over) {
		if j <= d {
			out = append(out, MemberSetName(s.Name, j))
		}
	}
	return out
}

// allMemberSets are every reservation set of s that holds keys.
func allMemberSets(s *Set) []string { return append(memberSets(s, s.Over-1), FullSetName(s.Name)) }

// LimitSets returns the connlimit sets of rs that hold reservations (those
// with a gate), in rs order.
func LimitSets(rs *Ruleset) []*Set {
	gated := map[string]bool{}
	for _, s := range rs.Sets {
		if s.Kind == SetGate {
			gated[s.Limit] = true
		}
	}
	var out []*Set
	for _, s := range rs.Sets {
		if gated[s.Name] {
			out = append(out, s)
		}
	}
	return out
}

// Gated returns the limit sets whose gate is closed: created (or renewed)
// by Apply and not yet counted, or left so by an agent that stopped
// before counting.
func (a *Applier) Gated(sets []*Set) ([]*Set, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	var out []*Set
	fresh := a.freshNow(c)
	for _, s := range sets {
		if fresh[s.Name] {
			out = append(out, s) // created closed
			continue
		}
		if fresh != nil && a.opened[s.Name] {
			continue // opened by WriteReservations since
		}
		els, err := a.elements(c, a.libSet(gateOf(s)))
		if err != nil {
			return nil, err
		}
		if len(els) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// Reservations returns the keys the reservation sets of the limit sets
// hold, with their depths.
func (a *Applier) Reservations(sets []*Set) ([]Reservation, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return nil, err
	}
	have, err := a.membersLocked(c, sets)
	if err != nil {
		return nil, err
	}
	return reservationsOf(sets, have), nil
}

// membersLocked reads the reservation sets of the limit sets: set name ->
// keys.
func (a *Applier) membersLocked(c *nftables.Conn, sets []*Set) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{}
	fresh := a.freshNow(c)
	for _, s := range sets {
		for _, name := range allMemberSets(s) {
			if fresh[s.Name] {
				out[name] = map[string]bool{} // created empty
				continue
			}
			els, err := a.stableElements(c, a.libSet(&Set{Name: name, Key: s.Key, Kind: SetMember}))
			if err != nil {
				return nil, err
			}
			out[name] = map[string]bool{}
			for _, e := range els {
				if k, ok := keyString(s, e.Key); ok {
					out[name][k] = true
				}
			}
		}
	}
	return out, nil
}

// reservationsOf turns membership back into depths: a key of S_r is at
// the full depth when in S_rf, else at the deepest layer it is in.
func reservationsOf(sets []*Set, members map[string]map[string]bool) []Reservation {
	var out []Reservation
	for _, s := range sets {
		for _, k := range slices.Sorted(maps.Keys(members[ReservedSetName(s.Name)])) {
			d := 0
			if members[FullSetName(s.Name)][k] {
				d = s.Over
			} else {
				for _, j := range Layers(s.Over) {
					if members[MemberSetName(s.Name, j)][k] {
						d = j
					}
				}
			}
			if d > 0 {
				out = append(out, Reservation{Set: s.Name, Key: k, Depth: d})
			}
		}
	}
	return out
}

// maxElemsPerMsg bounds the elements of one NEWSETELEM/DELSETELEM message.
// Why: google/nftables puts all elements of a call in one nested netlink
// attribute, whose length is 16 bits (64 KiB, about 1,800 IPv6 elements).
const maxElemsPerMsg = 1000

// maxMapElemsPerMsg is maxElemsPerMsg for classification maps, whose
// elements are larger (two keys of up to 44 bytes and a verdict with a
// chain name: about 150 bytes each).
const maxMapElemsPerMsg = 256

// WriteReservations makes the reservation sets of the limit sets hold
// exactly want (keys join and leave sets) and opens the gates of the sets
// in open, in one transaction: a gate opens only together with the
// reservations that make its limit exact.
func (a *Applier) WriteReservations(sets []*Set, want []Reservation, open []*Set) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, err := a.readConn()
	if err != nil {
		return err
	}
	have, err := a.membersLocked(c, sets)
	if err != nil {
		return err
	}
	wantM, err := membersOf(sets, want)
	if err != nil {
		return err
	}
	// Why a new Conn: the reads above went through c; a batch is queued on
	// a fresh one, thrown away on any queued error.
	w, err := nftables.New(slices.Concat(a.opts, []nftables.ConnOption{nftables.WithSockOptions(SocketBuffers((len(want)*8 + 64) * 64)...)})...)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	q := newElemQueue()
	for _, s := range sets {
		for _, name := range allMemberSets(s) {
			ks := a.libSet(&Set{Name: name, Key: s.Key, Kind: SetMember})
			if err := q.queue(s, wantM[name], have[name], func(part []nftables.SetElement) error {
				if err := w.SetAddElements(ks, part); err != nil {
					return fmt.Errorf("reserve in %s: %w", name, err)
				}
				return nil
			}); err != nil {
				return err
			}
			if err := q.queue(s, have[name], wantM[name], func(part []nftables.SetElement) error {
				if err := w.SetDeleteElements(ks, part); err != nil {
					return fmt.Errorf("release from %s: %w", name, err)
				}
				return nil
			}); err != nil {
				return err
			}
		}
	}
	fresh := a.freshNow(c)
	for _, s := range open {
		g := a.libSet(gateOf(s))
		els := gateElements(gateOf(s)) // what a fresh gate was created with
		if !fresh[s.Name] {
			if els, err = a.elements(c, g); err != nil {
				return err
			}
		}
		if len(els) > 0 {
			if err := w.SetDeleteElements(g, els); err != nil {
				return fmt.Errorf("open gate %s: %w", g.Name, err)
			}
		}
	}
	if err := a.flushLocked(w); err != nil {
		return fmt.Errorf("write reservations: %w: %w", ErrRefused, err)
	}
	for _, s := range slices.Concat(sets, open) {
		delete(a.fresh, s.Name) // written: no longer as created
	}
	if a.opened != nil {
		for _, s := range open {
			a.opened[s.Name] = true
		}
	}
	return nil
}

// membersOf is the membership that a list of reservations means.
func membersOf(sets []*Set, want []Reservation) (map[string]map[string]bool, error) {
	byName := map[string]*Set{}
	for _, s := range sets {
		byName[s.Name] = s
	}
	out := map[string]map[string]bool{}
	for _, r := range want {
		s := byName[r.Set]
		if s == nil || r.Depth <= 0 {
			return nil, fmt.Errorf("reservation %s at depth %d in %s: not a limit set being written", r.Key, r.Depth, r.Set)
		}
		for _, name := range memberSets(s, r.Depth) {
			if out[name] == nil {
				out[name] = map[string]bool{}
			}
			out[name][r.Key] = true
		}
	}
	return out, nil
}

// elemQueue turns the keys of one reservation set that another lacks
// into element messages of maxElemsPerMsg, through one reused chunk of
// elements and key bytes.
//
// Why reused: google/nftables marshals the elements of a call into its
// message at once, so a chunk can be refilled after each call; building
// every element of a 25k-key limit first (five member sets each) was
// 90 MB of garbage at the agent's start (BENCHMARKS.md, issue 13).
type elemQueue struct {
	els  []nftables.SetElement
	keys []byte
}

func newElemQueue() *elemQueue {
	return &elemQueue{els: make([]nftables.SetElement, 0, maxElemsPerMsg), keys: make([]byte, 0, 16*maxElemsPerMsg)}
}

// queue hands send the elements of the keys of from that to lacks, in
// key order, a chunk at a time.
func (q *elemQueue) queue(s *Set, from, to map[string]bool, send func([]nftables.SetElement) error) error {
	q.els, q.keys = q.els[:0], q.keys[:0]
	for _, k := range slices.Sorted(maps.Keys(from)) {
		if to[k] {
			continue
		}
		off := len(q.keys)
		b, err := appendKey(q.keys, s, k)
		if err != nil {
			return err
		}
		q.keys = b
		q.els = append(q.els, nftables.SetElement{Key: q.keys[off:len(q.keys):len(q.keys)]})
		if len(q.els) == maxElemsPerMsg {
			if err := send(q.els); err != nil {
				return err
			}
			q.els, q.keys = q.els[:0], q.keys[:0]
		}
	}
	if len(q.els) > 0 {
		return send(q.els)
	}
	return nil
}

// gateOf is the gate of a limit set.
func gateOf(s *Set) *Set {
	return &Set{Name: GateSetName(s.Name), Key: KeyNFProto, Size: 2, Kind: SetGate, Entry: s.Entry, Limit: s.Name}
}

// libSet is the library form of one of our sets, for element operations.
func (a *Applier) libSet(s *Set) *nftables.Set {
	return kernelSet(&nftables.Table{Name: a.table, Family: nftables.TableFamilyINet}, s)
}

// elements lists a set's elements; a set that does not exist has none.
func (a *Applier) elements(c *nftables.Conn, s *nftables.Set) ([]nftables.SetElement, error) {
	els, err := c.GetSetElements(s)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list set %s: %w", s.Name, err)
	}
	return els, nil
}

// stableElements lists a set's elements as they are: the union of reads
// until two in a row have as many elements (at most four reads).
//
// Why: the kernel dumps a set in parts and resumes each part by skipping
// the elements it already sent, in hash table order; when the table of an
// unsized set is resized meanwhile (the kernel grows it after inserts, in
// deferred work), the order changes and a dump misses some elements
// (measured: 16444 of 20000 read back right after they were written, on a
// busy machine). A set that holds the agent's own reservations must be
// read whole: a missed element is never released.
func (a *Applier) stableElements(c *nftables.Conn, s *nftables.Set) ([]nftables.SetElement, error) {
	seen := map[string]nftables.SetElement{}
	last := -1
	for range 4 {
		els, err := a.elements(c, s)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			seen[string(e.Key)] = e
		}
		if len(els) == last {
			break
		}
		last = len(els)
	}
	out := make([]nftables.SetElement, 0, len(seen))
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, seen[k])
	}
	return out, nil
}

// isNotExist tells a missing set apart; google/nftables v0.3.0 formats
// netlink errors with %v in GetSetElements, so only the text is left.
func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), unix.ENOENT.Error())
}

// addrKey is the set key type of a family's addresses.
func addrKey(f acl.Family) SetKey {
	if f == acl.IPv6 {
		return KeyIPv6
	}
	return KeyIPv4
}

// appendKey appends a reservation key encoded as an element of the limit
// set s to b (at most 16 bytes).
func appendKey(b []byte, s *Set, key string) ([]byte, error) {
	if s.Key == KeyNFProto {
		return append(b, nfprotoByte(s.Entry.Family)), nil
	}
	if p, err := netip.ParsePrefix(key); err == nil {
		return p.Addr().AppendBinary(b)
	}
	ad, err := netip.ParseAddr(key)
	if err != nil {
		return nil, fmt.Errorf("reservation key %q of %s: %w", key, s.Name, err)
	}
	return ad.Unmap().AppendBinary(b)
}

// keyString decodes an element of the limit set s back into a key.
func keyString(s *Set, b []byte) (string, bool) {
	if s.Key == KeyNFProto {
		return TotalKey, len(b) == 1
	}
	ad, ok := netip.AddrFromSlice(b)
	if !ok {
		return "", false
	}
	if k := limitKey(s.Entry.Family, &acl.Connlimit{Key: s.KeyKind, PrefixLen: s.PrefixLen}); k.Kind == acl.PerPrefix {
		return netip.PrefixFrom(ad, k.PrefixLen).String(), true
	}
	return ad.String(), true
}

package nft

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"

	"github.com/slxsh/slxsh/internal/acl"
)

// Kernel is the view of our table that the agent and its session side
// need: install a ruleset, read the named counters back, check for drift,
// and read or write the elements that the agent owns (load-limit flags,
// blocked sources, reservations). Applier implements it against netfilter,
// the one place that talks netlink to the table; Fake implements it in
// memory for unit tests.
type Kernel interface {
	// Apply installs rs as the whole content of its table, in one
	// transaction; the limit sets named by renew start afresh (see
	// Applier.Apply). On error the previous rules stay in force.
	Apply(rs *Ruleset, renew ...string) error
	// Counters returns the named counters of the table by name.
	Counters() (map[string]CounterValue, error)
	// CounterValues is Counters for the named counters only (those the
	// table lacks are left out): one read each, or one dump for many.
	CounterValues(names []string) (map[string]CounterValue, error)
	// InSync reports whether the table in the kernel still is rs.
	InSync(rs *Ruleset) (bool, error)
	// Drift describes how the kernel's table differs from rs ("" if not).
	Drift(rs *Ruleset) (string, error)
	// ForeignCommits counts the transactions of others that Drift has
	// seen since the start (any table of the namespace): after one, the
	// elements of our sets may have changed even when the rules did not.
	ForeignCommits() uint64
	// Tampered returns (and forgets) the sets of the table whose elements
	// another process changed, and whether events that might have named
	// others were lost (WatchElements; nothing without it).
	Tampered() (sets []string, lost bool)

	// SetFlag arms (on) or disarms a load-limit flag set (SetLoad) and
	// reports whether it changed it.
	SetFlag(set string, f acl.Family, on bool) (changed bool, err error)
	// Flag reads a load-limit flag set: whether it is armed (refusing).
	Flag(set string, f acl.Family) (on bool, err error)
	// BlockedLeft lists the elements of a blocked set (SetBlocked) with
	// the time until they expire; the element of a full flag set has no
	// address.
	BlockedLeft(set string, f acl.Family) ([]BlockedElem, error)
	// Unblock deletes sources (all when addrs is nil) from a blocked set.
	Unblock(set string, f acl.Family, addrs []netip.Addr) error
	// RestoreBlocked adds elements with the time each has left to a
	// blocked set (or its full flag).
	RestoreBlocked(set string, f acl.Family, elems []BlockedElem) error

	// QuotaUsed reads the bytes each key of a quota window set has used.
	QuotaUsed(s *Set) ([]QuotaUse, error)
	// SetFill counts the elements of the sets the packet path fills.
	SetFill(sets []*Set) (map[string]int, error)

	// Gated returns the limit sets (LimitSets) whose gate is closed.
	Gated(sets []*Set) ([]*Set, error)
	// Reservations returns what the depth maps of the limit sets hold.
	Reservations(sets []*Set) ([]Reservation, error)
	// WriteReservations makes the depth maps of sets hold exactly want
	// and opens the gates of open, in one transaction.
	WriteReservations(sets []*Set, want []Reservation, open []*Set) error
}

// CounterValue is the value of a named counter object.
type CounterValue struct {
	Packets, Bytes uint64
}

// ErrRefused marks an error returned when the kernel refused a transaction.
// The transaction is atomic, so the previous rules stay in force.
var ErrRefused = errors.New("kernel refused the transaction")

// ErrOutcomeUnknown marks an error after which the kernel may or may not
// have committed the transaction: its answers were lost (the netlink
// receive buffer overflowed). Check with InSync.
var ErrOutcomeUnknown = errors.New("transaction outcome unknown")

// Applier installs rulesets into one nftables table (family inet) through
// netlink, one transaction per Apply. It only ever reads or changes the
// table named by the ruleset (or, for Counters and InSync before the first
// Apply, the table given to NewApplier). It is safe for concurrent use.
type Applier struct {
	mu      sync.Mutex
	table   string
	opts    []nftables.ConnOption
	sync    synced
	foreign uint64 // commits by others seen by Drift (ForeignCommits)

	tamperMu   sync.Mutex      // guards what WatchElements records (watch.go)
	tampered   map[string]bool // sets whose elements others changed
	tamperLost bool            // events were lost
	watching   bool            // WatchElements has listened
	watchConn  *netlink.Conn   // its socket while it listens (pauseWatch)

	lastRS     *Ruleset
	lastDigest *digest

	statePath string // where the handles are saved for a restarted Applier ("": nowhere)
	loaded    bool   // statePath was read
	saver     stateWriter

	// fresh names the limit sets whose gate and reservation sets the
	// last Apply created (or renewed): the gate closed, the others empty,
	// for as long as the generation is freshGen (only our own element
	// commits since). The agent's counting right after an apply then
	// reads none of them.
	fresh    map[string]bool
	freshGen uint32
	// opened names the limit sets whose gates WriteReservations opened
	// since, valid as fresh is: Gated answers for them without reading.
	opened map[string]bool
}

// synced remembers that the kernel held a ruleset at a generation: while
// the generation stays the same, nothing has been committed since, and the
// table still holds it, with the rule handles in chains (when known).
type synced struct {
	ok     bool
	gen    uint32
	rs     *Ruleset // the ruleset value itself (nil when loaded from the saved state)
	sum    [32]byte // SHA-256 of Ruleset.String() of what the table holds
	chains map[string]chainSync
	table  *tableState // the chains, sets and objects it holds (as readTable would read them)
}

// chainSync is what the kernel holds in one chain.
type chainSync struct {
	sum   [32]byte          // SHA-256 of Chain.String()
	rules []kernelRuleState // in order; nil when the handles are unknown
}

// digest sums a ruleset and each of its chains. Rendering a large
// ruleset as text takes long enough to do it once per ruleset value, and
// once per chain value: a chain that the compile cache kept (the same
// *Chain) keeps its sum from the digest before.
type digest struct {
	sum    [32]byte   // of the whole ruleset
	rs     *Ruleset   // what was summed
	chains [][32]byte // of each Chain.String(), in the order of rs.Chains
}

// digestOf sums rs, taking the sums of chains that prev summed already
// (prev may be nil). The chains of the two are walked side by side: a
// change keeps the others in order.
func digestOf(rs *Ruleset, prev *digest) *digest {
	d := &digest{rs: rs, chains: make([][32]byte, len(rs.Chains))}
	var old []*Chain
	if prev != nil {
		old = prev.rs.Chains
	}
	for i, j := range heldAt(old, rs.Chains) {
		if j < 0 {
			d.chains[i] = sha256.Sum256([]byte(rs.Chains[i].String()))
			continue
		}
		d.chains[i] = prev.chains[j]
	}
	// The whole, in a few large writes (a Write per piece costs more).
	h := sha256.New()
	b := make([]byte, 0, 64+len(rs.Counters)*32)
	b = append(append(append(b, "table inet "...), rs.Table...), '\n')
	for _, c := range rs.Counters {
		b = append(append(append(b, "counter "...), c...), '\n')
	}
	for _, s := range rs.Sets {
		if s.Map == nil {
			b = append(b, s.String()...)
			continue
		}
		// Its elements as values: rendering 50k of them as text costs
		// more than a change.
		m, _ := s.Map.MarshalBinary()
		b = strconv.AppendInt(append(append(append(b, "map "...), s.Name...), ' '), int64(len(m)), 10)
		h.Write(append(b, '\n'))
		h.Write(m)
		b = b[:0]
	}
	for i := range d.chains {
		b = append(b, d.chains[i][:]...)
	}
	h.Write(b)
	h.Sum(d.sum[:0])
	return d
}

// chainLookahead is how far heldAt looks for a chain in the previous
// ruleset past where the last one was found (entries added or removed).
const chainLookahead = 8

// heldAt returns, for each chain of now, its index in was when the very
// chain value is there, or -1. The two are walked side by side: a change
// keeps the other chains in order.
func heldAt(was, now []*Chain) []int {
	at := make([]int, len(now))
	j := 0 // in was
	for i, ch := range now {
		k := slices.Index(was[j:min(j+chainLookahead, len(was))], ch)
		if k < 0 {
			at[i] = -1
			continue
		}
		j += k
		at[i] = j
		j++
	}
	return at
}

// digestOf returns rs's digest, computed once for the last ruleset value
// (rulesets are not modified once built).
func (a *Applier) digestOf(rs *Ruleset) *digest {
	if a.lastRS != rs {
		a.lastRS, a.lastDigest = rs, digestOf(rs, a.lastDigest)
	}
	return a.lastDigest
}

// digestLater is a digest (and table state) being made in the background.
type digestLater struct {
	rs    *Ruleset
	done  chan struct{}
	d     *digest
	table *tableState
}

// digestLater starts making rs's digest and tableOf(rs).
func (a *Applier) digestLater(rs *Ruleset) *digestLater {
	l, last := &digestLater{rs: rs, done: make(chan struct{})}, a.lastDigest
	go func() {
		l.d, l.table = digestOf(rs, last), tableOf(rs)
		close(l.done)
	}()
	return l
}

// wait returns what l made, and keeps the digest as a.digestOf does.
func (l *digestLater) wait(a *Applier) (*digest, *tableState) {
	if l == nil {
		return nil, nil
	}
	<-l.done
	a.lastRS, a.lastDigest = l.rs, l.d
	return l.d, l.table
}

// newSynced describes rs at gen; chains gives the chains whose rules (and
// handles) are known, others are summed from rs. table is tableOf(rs)
// when the caller has it already (nil: made here).
func newSynced(gen uint32, rs *Ruleset, d *digest, chains map[string]chainSync, table *tableState) synced {
	if table == nil {
		table = tableOf(rs)
	}
	s := synced{ok: true, gen: gen, rs: rs, sum: d.sum, chains: make(map[string]chainSync, len(rs.Chains)), table: table}
	for i, ch := range rs.Chains {
		if cs, ok := chains[ch.Name]; ok {
			s.chains[ch.Name] = cs
			continue
		}
		s.chains[ch.Name] = chainSync{sum: d.chains[i]}
	}
	return s
}

// tableOf is what readTable reads of a table that holds exactly rs.
func tableOf(rs *Ruleset) *tableState {
	t := &nftables.Table{Name: rs.Table, Family: nftables.TableFamilyINet}
	st := &tableState{exists: true, chains: make(map[string]*nftables.Chain, len(rs.Chains)),
		sets: make(map[string]*nftables.Set, len(rs.Sets)), objs: make(map[string]*nftables.NamedObj, len(rs.Counters))}
	for _, ch := range rs.Chains {
		st.chains[ch.Name] = kernelChain(t, ch)
	}
	for _, s := range rs.Sets {
		st.sets[s.Name] = kernelSet(t, s)
		if s.Map != nil {
			if st.maps == nil {
				st.maps = map[string]*VMap{}
			}
			st.maps[s.Name] = s.Map
		}
	}
	for _, name := range rs.Counters {
		st.objs[name] = &nftables.NamedObj{Table: t, Name: name, Type: nftables.ObjTypeCounter}
	}
	return st
}

// same reports whether s describes rs.
func (s *synced) same(rs *Ruleset, d func() *digest) bool {
	return s.ok && (s.rs == rs || s.sum == d().sum)
}

// NewApplier returns an Applier for table (family inet). opts are passed to
// nftables.New for every connection it opens; use
// nftables.WithNetNSFd to work inside another network namespace.
func NewApplier(table string, opts ...nftables.ConnOption) *Applier {
	return &Applier{table: table, opts: opts}
}

var _ Kernel = (*Applier)(nil)

// Apply makes the table equal to rs in one netlink transaction:
//
//   - the table, missing sets and missing named counters are added; existing
//     sets and counters are kept as they are, since the sets' elements hold
//     the connection counts and the counters hold the statistics;
//   - every desired chain is added (a no-op when it exists) and flushed, and
//     its rules are added in order, so each chain's rules are replaced
//     atomically; a chain is left untouched instead when the Applier knows
//     the kernel holds exactly that chain (nothing was committed since it
//     last saw the table in sync) and nothing else has to be re-created;
//     and when it knows the chain's previous rules and their handles, only
//     the rules that changed are deleted and inserted (see diffChain);
//   - chains, sets and counters that rs does not name are flushed and then
//     deleted, after every rule that could reference them is gone.
//
// A limit set that Apply creates comes with its reservation objects and a
// closed gate: its entry admits nothing until the agent has counted the
// sessions already open (WriteReservations opens it). The limit sets named
// by renew (and any of which the kernel lacks a reservation object) are
// deleted and created so, in the same transaction: the agent asks for it
// when the sessions they should count may include some they did not see
// (a drift repair, an ACL bound to another interface).
//
// When the Applier knows that the kernel holds rs already, Apply commits
// nothing. The current content is read from the kernel first, so Apply also
// adopts a table left by an earlier process without deleting it. A transaction the
// kernel refuses changes nothing and returns an error wrapping ErrRefused.
func (a *Applier) Apply(rs *Ruleset, renew ...string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := validate(rs); err != nil {
		return fmt.Errorf("apply table inet %s: %w", a.table, err)
	}
	if rs.Table != "" && rs.Table != a.table {
		a.table, a.sync = rs.Table, synced{}
	}
	c, err := a.readConn()
	if err != nil {
		return err
	}
	before, genErr := generation(c)
	var prev synced
	if genErr == nil {
		a.loadState(c, before)
		if a.sync.ok && a.sync.gen == before {
			prev = a.sync
		}
	}
	var known map[string]chainSync
	if prev.ok {
		if len(renew) == 0 && prev.same(rs, func() *digest { return a.digestOf(rs) }) {
			return nil // the kernel holds rs: nothing to commit
		}
		known = prev.chains
	}
	a.sync = synced{}
	cur := prev.table
	if !prev.ok || cur == nil {
		// Why not always: reading back the objects of a large table costs
		// seconds (a dump of 100k counters); while the generation is the
		// one we saw, the kernel holds what we know.
		if cur, err = readTable(c, a.table); err != nil {
			return fmt.Errorf("read table inet %s: %w", a.table, err)
		}
		if err := knownMaps(c, a.table, cur, rs); err != nil {
			return fmt.Errorf("read table inet %s: %w", a.table, err)
		}
	}
	// A new wire and socket per Apply: nothing of a transaction that
	// failed to queue can reach a later one.
	n := messagesOf(rs)
	b := &batchWriter{netns: c.NetNS, opts: bufferOpts(n), echo: handlesWorth(rs)}
	w := newWire(b.echo, wireSize(n, known))
	var was *Ruleset
	if prev.ok && prev.table != nil {
		was = prev.rs // what the kernel holds, when the Applier has its value
	}
	// Without knowledge of the table (a first apply, say), the transaction
	// needs the ruleset's digest and table state only once the kernel has
	// committed it: they are made on another core meanwhile.
	var later *digestLater
	var dg *digest
	if known == nil && a.lastRS != rs {
		later = a.digestLater(rs)
	} else {
		dg = a.digestOf(rs)
	}
	tx, err := queue(w, a.table, cur, rs, dg, known, was, renew)
	if err == nil {
		err = w.ready()
	}
	if err != nil {
		later.wait(a)
		return fmt.Errorf("prepare transaction for table inet %s: %w", a.table, err)
	}
	if wireCheck != nil {
		wireCheck(w, func(c txnWriter) error {
			_, err := queue(c, a.table, cur, rs, dg, known, was, renew)
			return err
		}, b.echo)
	}
	resume := a.pauseWatch(n, len(renew) > 0)
	ferr := b.send(w)
	if later != nil {
		tx.d, tx.table = later.wait(a)
	}
	if err := ferr; err != nil {
		// Why any receive error: the kernel processed the batch in sendmsg;
		// an answer not read (lost to ENOBUFS, past the deadline) leaves its
		// outcome unknown.
		if errors.Is(err, syscall.ENOBUFS) || b.err != nil {
			resume(false)
			return fmt.Errorf("apply table inet %s: %w: %w", a.table, ErrOutcomeUnknown, err)
		}
		// Nothing was committed: what the Applier knew still holds.
		after, gerr := generation(c)
		none := genErr == nil && gerr == nil && after == before // no commit since before
		if prev.ok && none {
			a.sync = prev
		}
		resume(none)
		return fmt.Errorf("apply table inet %s: %w: %w", a.table, ErrRefused, err)
	}
	// Only when exactly one transaction (ours) was committed meanwhile do we
	// know what the table holds at the new generation.
	wasOpen, gatesKnown := a.opened, a.freshGen == before // what Gated knew held until this commit
	a.fresh, a.opened = nil, nil
	after, aerr := generation(c)
	ours := genErr == nil && aerr == nil && after == before+1 // ours alone since before
	resume(ours)
	if ours {
		a.sync = tx.synced(after, b.echoes)
		a.saveState(c, true)
		a.fresh, a.freshGen, a.opened = tx.freshLimits(), after, map[string]bool{}
		for _, s := range LimitSets(rs) {
			if gatesKnown && wasOpen[s.Name] && !a.fresh[s.Name] {
				a.opened[s.Name] = true // a gate this commit did not touch
			}
		}
	}
	return nil
}

// readConn opens a connection for reading the table.
func (a *Applier) readConn() (*nftables.Conn, error) {
	c, err := nftables.New(slices.Concat(a.opts, []nftables.ConnOption{nftables.WithSockOptions(largeDumps)})...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return c, nil
}

// handlesWorth tells the chains of rs whose rules are echoed: all but the
// chains of entries in maps, which hold a few rules each (one per entry
// and limit) and are changed by flushing them and adding their rules
// again, which costs no more than the echoes of ten thousand of them.
func handlesWorth(rs *Ruleset) func(string) bool {
	worth := map[string]bool{}
	for _, ch := range rs.Chains {
		if !ch.Mapped {
			worth[ch.Name] = true
		}
	}
	return func(chain string) bool { return worth[chain] }
}

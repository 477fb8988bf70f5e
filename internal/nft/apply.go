package nft

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Kernel is the narrow view of the kernel that the agent needs: install a
// ruleset, read the named counters back, and check for drift. Applier
// implements it against netfilter; Fake implements it in memory for unit
// tests.
type Kernel interface {
	// Apply installs rs as the whole content of its table, in one
	// transaction. On error the previous rules stay in force.
	Apply(rs *Ruleset) error
	// Counters returns the named counters of the table by name.
	Counters() (map[string]CounterValue, error)
	// InSync reports whether the table in the kernel still is rs.
	InSync(rs *Ruleset) (bool, error)
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
	mu    sync.Mutex
	table string
	opts  []nftables.ConnOption
	sync  synced
}

// synced remembers that the kernel held a ruleset at a generation: while
// the generation stays the same, nothing has been committed since, and the
// table still holds it.
type synced struct {
	ok     bool
	gen    uint32
	text   string            // Ruleset.String() of what the table holds
	chains map[string]string // Chain.String() of each of its chains
}

func newSynced(gen uint32, rs *Ruleset) synced {
	s := synced{ok: true, gen: gen, text: rs.String(), chains: map[string]string{}}
	for _, ch := range rs.Chains {
		s.chains[ch.Name] = ch.String()
	}
	return s
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
//   - chains, sets and counters that rs does not name are flushed and then
//     deleted, after every rule that could reference them is gone.
//
// The current content is read from the kernel first, so Apply also adopts a
// table left by an earlier process without deleting it. A transaction the
// kernel refuses changes nothing and returns an error wrapping ErrRefused.
func (a *Applier) Apply(rs *Ruleset) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rs.Table != "" {
		a.table = rs.Table
	}
	if err := validate(rs); err != nil {
		return fmt.Errorf("apply table inet %s: %w", a.table, err)
	}
	// Why a new Conn per Apply: a queued error (from AddSet, say) can leave
	// a partial batch in a Conn that a later Flush would still commit.
	c, err := nftables.New(append(a.opts, nftables.WithSockOptions(append(bufferOpts(rs), largeDumps)...))...)
	if err != nil {
		return fmt.Errorf("open netlink: %w", err)
	}
	before, genErr := generation(c)
	var known map[string]string
	if genErr == nil && a.sync.ok && a.sync.gen == before {
		known = a.sync.chains
	}
	a.sync = synced{}
	cur, err := readTable(c, a.table)
	if err != nil {
		return fmt.Errorf("read table inet %s: %w", a.table, err)
	}
	if err := queue(c, a.table, cur, rs, known); err != nil {
		return fmt.Errorf("prepare transaction for table inet %s: %w", a.table, err)
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, syscall.ENOBUFS) {
			return fmt.Errorf("apply table inet %s: %w: %w", a.table, ErrOutcomeUnknown, err)
		}
		return fmt.Errorf("apply table inet %s: %w: %w", a.table, ErrRefused, err)
	}
	// Only when exactly one transaction (ours) was committed meanwhile do we
	// know what the table holds at the new generation.
	if after, err := generation(c); genErr == nil && err == nil && after == before+1 {
		a.sync = newSynced(after, rs)
	}
	return nil
}

// readConn opens a connection for reading the table.
func (a *Applier) readConn() (*nftables.Conn, error) {
	c, err := nftables.New(append(a.opts, nftables.WithSockOptions(largeDumps))...)
	if err != nil {
		return nil, fmt.Errorf("open netlink: %w", err)
	}
	return c, nil
}

// queue adds the whole transaction to c, in an order the kernel accepts:
// creations, then flushes (after which no rule references anything), then
// deletions and re-creations, then the rules. known holds the text of the
// chains the kernel is known to hold (nil when unknown).
func queue(c *nftables.Conn, table string, cur *tableState, rs *Ruleset, known map[string]string) error {
	tx := &txn{c: c, t: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}, cur: cur, rs: rs}
	tx.plan(known)
	c.AddTable(tx.t)
	if err := tx.addSetsAndCounters(); err != nil {
		return err
	}
	tx.addAndFlushChains()
	tx.flushStaleChains()
	// No rule references anything from here on, except those of kept chains,
	// which reference nothing that is deleted or re-created.
	tx.deleteAndRecreateChains()
	if err := tx.deleteAndRecreateSetsAndObjects(); err != nil {
		return err
	}
	tx.addRules()
	return nil
}

// txn builds one Apply transaction.
type txn struct {
	c   *nftables.Conn
	t   *nftables.Table
	cur *tableState
	rs  *Ruleset

	recreateSets   []*Set
	recreateObjs   []string
	recreateChains []*Chain
	staleChains    []*nftables.Chain
	keep           map[string]bool // chains left as they are
}

// plan finds what exists with other properties and must be re-created,
// and which chains can be kept.
func (tx *txn) plan(known map[string]string) {
	for _, s := range tx.rs.Sets {
		if have, ok := tx.cur.sets[s.Name]; ok && !sameSet(have, kernelSet(tx.t, s)) {
			// Why: AddSet of an existing set with other properties fails
			// the whole batch; such a set must be deleted and re-created
			// (its counts are lost, as with a new set name).
			tx.recreateSets = append(tx.recreateSets, s)
		}
	}
	for _, name := range tx.rs.Counters {
		if o, ok := tx.cur.objs[name]; ok && o.Type != nftables.ObjTypeCounter {
			tx.recreateObjs = append(tx.recreateObjs, name)
		}
	}
	for _, ch := range tx.rs.Chains {
		if have, ok := tx.cur.chains[ch.Name]; ok && !sameChain(have, kernelChain(tx.t, ch)) {
			// Why: the kernel cannot change a chain's hook or type in place.
			tx.recreateChains = append(tx.recreateChains, ch)
		}
	}
	tx.keep = map[string]bool{}
	if known == nil || len(tx.recreateSets)+len(tx.recreateObjs)+len(tx.recreateChains) > 0 {
		// A kept chain's rules could reference what is re-created.
		return
	}
	for _, ch := range tx.rs.Chains {
		if text, ok := known[ch.Name]; ok && tx.cur.chains[ch.Name] != nil && text == ch.String() {
			tx.keep[ch.Name] = true
		}
	}
}

// addSetsAndCounters adds the sets and counters that do not exist yet.
// Existing ones are left alone: set elements hold the counts, counters the
// statistics.
func (tx *txn) addSetsAndCounters() error {
	for _, s := range tx.rs.Sets {
		if _, ok := tx.cur.sets[s.Name]; !ok {
			if err := tx.c.AddSet(kernelSet(tx.t, s), nil); err != nil {
				return fmt.Errorf("add set %s: %w", s.Name, err)
			}
		}
	}
	for _, name := range tx.rs.Counters {
		if _, ok := tx.cur.objs[name]; !ok {
			tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
		}
	}
	return nil
}

// addAndFlushChains adds every desired chain that is not kept (a no-op when
// it exists) and flushes it. A chain to be re-created is only flushed here.
func (tx *txn) addAndFlushChains() {
	recreate := map[string]bool{}
	for _, ch := range tx.recreateChains {
		recreate[ch.Name] = true
	}
	for _, ch := range tx.rs.Chains {
		if tx.keep[ch.Name] {
			continue
		}
		kc := kernelChain(tx.t, ch)
		if !recreate[ch.Name] {
			tx.c.AddChain(kc)
		}
		tx.c.FlushChain(kc)
	}
}

// flushStaleChains flushes the chains that the ruleset does not name.
func (tx *txn) flushStaleChains() {
	want := map[string]bool{}
	for _, ch := range tx.rs.Chains {
		want[ch.Name] = true
	}
	for _, name := range sortedKeys(tx.cur.chains) {
		if !want[name] {
			tx.c.FlushChain(tx.cur.chains[name])
			tx.staleChains = append(tx.staleChains, tx.cur.chains[name])
		}
	}
}

func (tx *txn) deleteAndRecreateChains() {
	for _, have := range tx.staleChains {
		tx.c.DelChain(have)
	}
	for _, ch := range tx.recreateChains {
		tx.c.DelChain(kernelChain(tx.t, ch))
		tx.c.AddChain(kernelChain(tx.t, ch))
	}
}

func (tx *txn) deleteAndRecreateSetsAndObjects() error {
	wantSets := map[string]bool{}
	for _, s := range tx.rs.Sets {
		wantSets[s.Name] = true
	}
	for _, name := range sortedKeys(tx.cur.sets) {
		if !wantSets[name] {
			tx.c.DelSet(tx.cur.sets[name])
		}
	}
	for _, s := range tx.recreateSets {
		tx.c.DelSet(kernelSet(tx.t, s))
		if err := tx.c.AddSet(kernelSet(tx.t, s), nil); err != nil {
			return fmt.Errorf("re-create set %s: %w", s.Name, err)
		}
	}
	wantObjs := map[string]bool{}
	for _, name := range tx.rs.Counters {
		wantObjs[name] = true
	}
	for _, name := range sortedKeys(tx.cur.objs) {
		if !wantObjs[name] {
			tx.c.DeleteObject(tx.cur.objs[name])
		}
	}
	for _, name := range tx.recreateObjs {
		tx.c.DeleteObject(tx.cur.objs[name])
		tx.c.AddObj(&nftables.CounterObj{Table: tx.t, Name: name})
	}
	return nil
}

func (tx *txn) addRules() {
	for _, ch := range tx.rs.Chains {
		if tx.keep[ch.Name] {
			continue
		}
		kc := &nftables.Chain{Name: ch.Name, Table: tx.t}
		for _, r := range ch.Rules {
			tx.c.AddRule(kernelRule(tx.t, kc, r))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// kernelSet is the library form of a set, as nft creates it for
// `set NAME { type T; size N; flags dynamic[,timeout]; [timeout D;] }`.
func kernelSet(t *nftables.Table, s *Set) *nftables.Set {
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
	return have.KeyType.Name == want.KeyType.Name && have.KeyType.Bytes == want.KeyType.Bytes &&
		have.Dynamic == want.Dynamic && have.Size == want.Size &&
		have.HasTimeout == want.HasTimeout && have.Timeout == want.Timeout &&
		!have.Constant && !have.Interval && !have.IsMap
}

var hooks = map[string]*nftables.ChainHook{
	"prerouting":  nftables.ChainHookPrerouting,
	"input":       nftables.ChainHookInput,
	"forward":     nftables.ChainHookForward,
	"output":      nftables.ChainHookOutput,
	"postrouting": nftables.ChainHookPostrouting,
}

// kernelChain is the library form of a chain: base chains are filter chains
// with policy accept.
func kernelChain(t *nftables.Table, ch *Chain) *nftables.Chain {
	kc := &nftables.Chain{Name: ch.Name, Table: t}
	if ch.Hook != nil {
		accept := nftables.ChainPolicyAccept
		kc.Type = nftables.ChainTypeFilter
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

// bufferOpts sizes the netlink socket buffers for a transaction of rs.
//
// Why: the whole batch goes out in one sendmsg, which the kernel refuses
// with EMSGSIZE when it is larger than the send buffer; and the kernel
// queues an acknowledgement plus an echo of every added rule before we read
// any of them, so a small receive buffer overflows (ENOBUFS) and we could not
// even tell that the commit succeeded. The *FORCE options need
// CAP_NET_ADMIN, which applying a ruleset needs anyway.
func bufferOpts(rs *Ruleset) []nftables.SockOption {
	n := 64
	for _, ch := range rs.Chains {
		n += 2 + len(ch.Rules)
	}
	n += len(rs.Sets) + len(rs.Counters)
	size := n * 4096
	if size < 4<<20 {
		size = 4 << 20
	}
	if size > 1<<30 {
		size = 1 << 30
	}
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

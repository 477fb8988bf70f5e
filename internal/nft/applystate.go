package nft

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/slxsh/slxsh/internal/atomicfile"
)

// The rule handles of the table, saved for a restarted Applier.
//
// Why: a restarted agent would otherwise have to read every rule back
// (seconds at 65k rules) or re-send every chain to know the handles that a
// change needs. The kernel counts commits per namespace (the generation):
// when it still is the one saved after our last commit, nothing was
// committed since, and the table holds exactly the ruleset whose sum was
// saved, with the saved handles. Anything else (generation moved, another
// boot or namespace, file missing or damaged) and the Applier knows
// nothing, as before.
//
// Two files: PATH holds the sum, the chains and their handles, written
// after each commit of rules; PATH.gen holds the generation and the sum,
// written after each commit of the Applier's own element changes (which
// move the generation but not the rules) as well, and the generation of
// the PATH it follows (Base): a PATH.gen never validates another PATH,
// even of the same sum (a renewal changes handles, not the sum).
//
// Both are written in the background (stateWriter), in order, the latest
// state only: an Apply returns before the file is written. A restart
// before it was finds an older file, whose generation no longer holds:
// the full path, as without a file. Flush waits for the writes.

// SetStatePath makes the Applier save what it knows of the table to path
// (and path.gen) after each commit, in the background (Flush waits for
// it), and read it once at its first Apply or Drift. The directory must be
// one that only root can write to (the agent's state directory). ""
// saves nothing. Writes queued for the path before are waited for.
func (a *Applier) SetStatePath(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.saver.flush() // what was saved for the old path, there
	a.statePath, a.loaded = path, false
}

// RemoveTemps removes what the writes of an Applier killed during them
// left beside the state path (SetStatePath). Call it once the process is
// the only one that writes there (the agent: once it holds its socket).
func (a *Applier) RemoveTemps() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.statePath == "" {
		return nil
	}
	a.saver.flush()
	return errors.Join(atomicfile.RemoveTemps(a.statePath), atomicfile.RemoveTemps(a.statePath+".gen"))
}

// Flush waits until what the Applier knew at its last commit is saved
// (see SetStatePath): call it before the process exits.
func (a *Applier) Flush() {
	a.saver.flush()
}

// savedTable is the content of PATH.
//
// Why the chains are parallel slices: gob encodes a slice of strings,
// bools or bytes in one go, but a slice of structs field by field through
// reflection; 50k entry chains made the save a third of a change's cost.
type savedTable struct {
	Where string // boot and namespace (see where)
	Table string
	Gen   uint32
	Sum   []byte
	// The chains without their rules, in order: names, whether each is
	// an entry's chain of a map, the hooks of base chains, the sums of
	// all (32 bytes each), and the rules of those whose rules are known.
	Chains     []string
	Mapped     []bool
	Hooks      []savedHook
	ChainSums  []byte
	ChainRules []savedRules
	// What tableOf needs to know the table's sets and counters: whole
	// values, so that whatever kernelSet and kernelChain come to use is
	// saved too (a map's elements as VMap.MarshalBinary).
	Sets     []*Set
	Counters []string
}

type savedHook struct {
	Chain int
	Hook  Hook
}

type savedRules struct {
	Chain int
	Rules []kernelRuleState
}

// savedGen is the content of PATH.gen.
type savedGen struct {
	Where string
	Table string
	Gen   uint32
	Sum   []byte
	Base  uint32 // the Gen of the PATH this one follows
}

// loadState reads the saved state once, when the Applier knows nothing
// yet, and keeps it when it describes the kernel at gen.
func (a *Applier) loadState(c *nftables.Conn, gen uint32) {
	if a.loaded || a.statePath == "" || a.sync.ok {
		return
	}
	a.loaded = true
	var t savedTable
	if readState(a.statePath, &t) != nil || t.Where != where(c) || t.Table != a.table {
		return
	}
	if t.Gen != gen {
		var g savedGen
		if readState(a.statePath+".gen", &g) != nil || g.Where != t.Where || g.Table != t.Table || !bytes.Equal(g.Sum, t.Sum) ||
			g.Base != t.Gen || g.Gen != gen {
			return
		}
	}
	if len(t.Sum) != sha256.Size || len(t.Mapped) != len(t.Chains) || len(t.ChainSums) != len(t.Chains)*sha256.Size {
		return
	}
	s := synced{ok: true, gen: gen, sum: [32]byte(t.Sum), chains: make(map[string]chainSync, len(t.Chains))}
	skel := &Ruleset{Table: t.Table, Counters: t.Counters, Chains: make([]*Chain, len(t.Chains))}
	for i, name := range t.Chains {
		skel.Chains[i] = &Chain{Name: name, Mapped: t.Mapped[i]}
		s.chains[name] = chainSync{sum: [32]byte(t.ChainSums[i*sha256.Size:])}
	}
	for _, h := range t.Hooks {
		if h.Chain < 0 || h.Chain >= len(t.Chains) {
			return
		}
		skel.Chains[h.Chain].Hook = &h.Hook
	}
	for _, r := range t.ChainRules {
		if r.Chain < 0 || r.Chain >= len(t.Chains) {
			return
		}
		name := t.Chains[r.Chain]
		s.chains[name] = chainSync{sum: s.chains[name].sum, rules: r.Rules}
	}
	skel.Sets = t.Sets
	s.table = tableOf(skel)
	a.sync, a.saver.base = s, t.Gen
}

// saveState saves a.sync: the whole of it when rules were committed
// (full), its generation only otherwise. It hands the writer a copy of
// what it saves (a.sync changes in place at the next commit) and returns;
// the writer writes the latest. A failure to save costs a restarted agent
// time, not correctness: it is not reported.
func (a *Applier) saveState(c *nftables.Conn, full bool) {
	if a.statePath == "" || !a.sync.ok {
		return
	}
	w := stateWrite{path: a.statePath}
	at := where(c)
	if full {
		if a.sync.rs == nil {
			return // loaded from the file, which says it all already
		}
		// Why a clone of the map and not the slices of PATH: cloning
		// copies its memory in one go, the slices need a lookup per chain
		// (8 ms at 50k chains); the writer builds them.
		w.table = &stateTable{where: at, table: a.table, gen: a.sync.gen, sum: a.sync.sum, rs: a.sync.rs, chains: maps.Clone(a.sync.chains)}
		a.saver.base = a.sync.gen
	}
	w.gen = savedGen{Where: at, Table: a.table, Gen: a.sync.gen, Sum: bytes.Clone(a.sync.sum[:]), Base: a.saver.base}
	a.saver.queue(w)
}

// stateTable is what PATH saves: a copy of a.sync (which changes in place
// at the next commit) and the ruleset's values (which do not, nor do the
// rules of a chainSync).
type stateTable struct {
	where, table string
	gen          uint32
	sum          [32]byte
	rs           *Ruleset
	chains       map[string]chainSync
}

// saved is the content of PATH.
func (st *stateTable) saved() *savedTable {
	rs := st.rs
	t := &savedTable{Where: st.where, Table: st.table, Gen: st.gen, Sum: st.sum[:], Counters: rs.Counters, Sets: rs.Sets,
		Chains: make([]string, len(rs.Chains)), Mapped: make([]bool, len(rs.Chains)), ChainSums: make([]byte, 0, len(rs.Chains)*sha256.Size)}
	for i, ch := range rs.Chains {
		cs := st.chains[ch.Name]
		t.Chains[i], t.Mapped[i], t.ChainSums = ch.Name, ch.Mapped, append(t.ChainSums, cs.sum[:]...)
		if ch.Hook != nil {
			t.Hooks = append(t.Hooks, savedHook{i, *ch.Hook})
		}
		if cs.rules != nil {
			t.ChainRules = append(t.ChainRules, savedRules{i, cs.rules})
		}
	}
	return t
}

// where names the boot and the network namespace c works in: generations
// count per namespace from boot, so a saved one means nothing elsewhere.
func where(c *nftables.Conn) string {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	var st unix.Stat_t
	if c.NetNS != 0 {
		err = unix.Fstat(c.NetNS, &st)
	} else {
		err = unix.Stat("/proc/thread-self/ns/net", &st)
	}
	if err != nil {
		return ""
	}
	return fmt.Sprintf("%s %d:%d", strings.TrimSpace(string(boot)), st.Dev, st.Ino)
}

const stateMagic = "slxsh nft state 3\n" // 1: chains as structs; 2: PATH.gen without Base

// writeState replaces path with v (gob) and a SHA-256 of it, through a
// new file renamed over it (readers see the old or the new one).
func writeState(path string, v any) error {
	var buf bytes.Buffer
	buf.WriteString(stateMagic)
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	// Why no fsync: the state only means something until the next boot
	// (generations restart), and a file torn by a crash of the system
	// fails its checksum. An fsync would delay every commit's return
	// (and the gates the agent opens after it).
	return atomicfile.Write(path, buf.Bytes(), 0o600, false)
}

// readState reads what writeState wrote, refusing symlinks, other files
// than regular ones and anything damaged.
func readState(path string, v any) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return err
	}
	if len(data) < len(stateMagic)+sha256.Size || !bytes.HasPrefix(data, []byte(stateMagic)) {
		return errors.New("damaged")
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return errors.New("damaged")
	}
	return gob.NewDecoder(bytes.NewReader(body[len(stateMagic):])).Decode(v)
}

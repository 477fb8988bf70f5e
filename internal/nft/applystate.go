package nft

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
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
// move the generation but not the rules) as well.

// SetStatePath makes the Applier save what it knows of the table to path
// (and path.gen) after each commit, and read it once at its first Apply or
// Drift. The directory must be one that only root can write to (the
// agent's state directory). "" saves nothing.
func (a *Applier) SetStatePath(path string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.statePath, a.loaded = path, false
}

// savedTable is the content of PATH.
type savedTable struct {
	Where  string // boot and namespace (see where)
	Table  string
	Gen    uint32
	Sum    [32]byte
	Chains []savedChain
	// What tableOf needs to know the table's sets and counters: whole
	// values, so that whatever kernelSet and kernelChain come to use is
	// saved too.
	Sets     []*Set
	Counters []string
}

type savedChain struct {
	Head  *Chain // the chain without its rules
	Sum   [32]byte
	Rules []kernelRuleState
}

// savedGen is the content of PATH.gen.
type savedGen struct {
	Where string
	Table string
	Gen   uint32
	Sum   [32]byte
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
		if readState(a.statePath+".gen", &g) != nil || g.Where != t.Where || g.Table != t.Table || g.Sum != t.Sum || g.Gen != gen {
			return
		}
	}
	s := synced{ok: true, gen: gen, sum: t.Sum, chains: map[string]chainSync{}}
	skel := &Ruleset{Table: t.Table, Counters: t.Counters}
	for _, ch := range t.Chains {
		if ch.Head == nil {
			return
		}
		s.chains[ch.Head.Name] = chainSync{sum: ch.Sum, rules: ch.Rules}
		skel.Chains = append(skel.Chains, ch.Head)
	}
	skel.Sets = t.Sets
	s.table = tableOf(skel)
	a.sync = s
}

// saveState saves a.sync: the whole of it when rules were committed
// (full), its generation only otherwise. A failure to save costs a
// restarted agent time, not correctness: it is not reported.
func (a *Applier) saveState(c *nftables.Conn, full bool) {
	if a.statePath == "" || !a.sync.ok {
		return
	}
	w := where(c)
	if full {
		rs := a.sync.rs
		if rs == nil {
			return // loaded from the file, which says it all already
		}
		t := savedTable{Where: w, Table: a.table, Gen: a.sync.gen, Sum: a.sync.sum, Counters: rs.Counters, Sets: rs.Sets}
		for _, ch := range rs.Chains {
			cs := a.sync.chains[ch.Name]
			head := *ch
			head.Rules = nil
			t.Chains = append(t.Chains, savedChain{Head: &head, Sum: cs.sum, Rules: cs.rules})
		}
		if writeState(a.statePath, &t) != nil {
			os.Remove(a.statePath)
			return
		}
	}
	if writeState(a.statePath+".gen", &savedGen{Where: w, Table: a.table, Gen: a.sync.gen, Sum: a.sync.sum}) != nil {
		os.Remove(a.statePath + ".gen")
	}
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

const stateMagic = "slxsh nft state 1\n"

// writeState replaces path with v (gob) and a SHA-256 of it, through a
// new file renamed over it (readers see the old or the new one).
func writeState(path string, v any) (err error) {
	var buf bytes.Buffer
	buf.WriteString(stateMagic)
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// Why no fsync: the state only means something until the next boot
	// (generations restart), and a file torn by a crash of the system
	// fails its checksum. An fsync would delay every commit's return
	// (and the gates the agent opens after it).
	if _, err := f.Write(buf.Bytes()); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
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

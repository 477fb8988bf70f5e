package conntrack

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/slxsh/slxsh/internal/conntrack/layers"
	"github.com/slxsh/slxsh/internal/nft"
	"golang.org/x/sys/unix"
)

// Reserver keeps the reservation sets of limit sets in one table (family
// inet) in the kernel. Every change is one netlink transaction; a Conn that
// saw an error is thrown away (KERNEL-NOTES: a failed AddSet or
// SetAddElements can leave a partial batch).
type Reserver struct {
	table   *nftables.Table
	netnsFd int
}

// NewReserver returns a Reserver for table in the namespace netnsFd (0: the
// caller's).
func NewReserver(table string, netnsFd int) *Reserver {
	return &Reserver{table: &nftables.Table{Name: table, Family: nftables.TableFamilyINet}, netnsFd: netnsFd}
}

// conn opens a connection whose socket buffers hold a batch of about
// msgs messages and elems set elements (see nft.SocketBuffers for why).
func (r *Reserver) conn(msgs, elems int) (*nftables.Conn, error) {
	opts := nft.SocketBuffers(msgs*4096 + elems*64)
	c, err := nftables.New(nftables.WithNetNSFd(r.netnsFd), nftables.WithSockOptions(opts...))
	if err != nil {
		return nil, fmt.Errorf("open nftables: %w", err)
	}
	return c, nil
}

// Gate creates the gate set of each limit set (creating an existing set
// with the same properties changes nothing) and closes it, in one
// transaction. Call it before installing a ruleset that creates the limit
// sets, so that their entries admit nothing until Write. The other
// reservation sets come with the ruleset (the compiler declares them).
func (r *Reserver) Gate(sets []LimitSet) error {
	if len(sets) == 0 {
		return nil
	}
	c, err := r.conn(len(sets)*2, len(sets))
	if err != nil {
		return err
	}
	c.AddTable(r.table)
	for _, s := range sets {
		g := gateSet(r.table, s)
		if err := c.AddSet(g, []nftables.SetElement{{Key: []byte{nfproto(s.Entry.Family)}}}); err != nil {
			return fmt.Errorf("create set %s: %w", g.Name, err)
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("close gates: %w", err)
	}
	return nil
}

// Read returns the reservations the kernel holds for the sets: each key at
// the deepest layer (or full) it is a member of. Sets without reservation
// sets hold none.
func (r *Reserver) Read(sets []LimitSet) ([]Reservation, error) {
	c, err := r.conn(0, 0)
	if err != nil {
		return nil, err
	}
	var out []Reservation
	for _, s := range sets {
		depth := map[string]int{}
		levels := append(layers.Layers(s.Over), s.Over)
		for _, j := range levels {
			name := layers.MemberName(s.Name, j)
			if j == s.Over {
				name = layers.FullName(s.Name)
			}
			els, err := r.elements(c, s, name)
			if err != nil {
				return nil, err
			}
			for _, e := range els {
				if k, ok := keyString(s, e.Key); ok {
					depth[k] = max(depth[k], j)
				}
			}
		}
		for k, d := range depth {
			out = append(out, Reservation{Set: s.Name, Key: k, Depth: d})
		}
	}
	slices.SortFunc(out, compareRes)
	return out, nil
}

// Gated returns the sets whose gate is closed.
func (r *Reserver) Gated(sets []LimitSet) ([]LimitSet, error) {
	c, err := r.conn(0, 0)
	if err != nil {
		return nil, err
	}
	var out []LimitSet
	for _, s := range sets {
		els, err := r.elements(c, s, layers.GateName(s.Name))
		if err != nil {
			return nil, err
		}
		if len(els) > 0 {
			out = append(out, s)
		}
	}
	return out, nil
}

// elements lists a set's elements; a set that does not exist has none.
func (r *Reserver) elements(c *nftables.Conn, s LimitSet, name string) ([]nftables.SetElement, error) {
	els, err := c.GetSetElements(memberSet(r.table, s, name))
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list set %s: %w", name, err)
	}
	return els, nil
}

// isNotExist tells a missing set apart; google/nftables v0.3.0 formats
// netlink errors with %v in GetSetElements, so only the text is left.
func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || strings.Contains(err.Error(), unix.ENOENT.Error())
}

// maxElemsPerMsg bounds the elements of one NEWSETELEM/DELSETELEM message.
// Why: google/nftables puts all elements of a call in one nested netlink
// attribute, whose length is 16 bits (64 KiB, about 1,800 IPv6 elements).
const maxElemsPerMsg = 1000

// Write makes the kernel hold exactly want for the sets (keys join and leave
// membership sets) and opens their gates, in one transaction.
func (r *Reserver) Write(sets []LimitSet, want []Reservation) error {
	have, err := r.Read(sets)
	if err != nil {
		return err
	}
	c, err := r.conn(len(sets)*40, (len(have)+len(want))*8)
	if err != nil {
		return err
	}
	wantBy, haveBy := bySet(want), bySet(have)
	for _, s := range sets {
		for _, j := range append(layers.Layers(s.Over), s.Over) {
			name := layers.MemberName(s.Name, j)
			if j == s.Over {
				name = layers.FullName(s.Name)
			}
			add, del, err := diffLevel(s, j, haveBy[s.Name], wantBy[s.Name])
			if err != nil {
				return err
			}
			ks := memberSet(r.table, s, name)
			for part := range slices.Chunk(add, maxElemsPerMsg) {
				if err := c.SetAddElements(ks, part); err != nil {
					return fmt.Errorf("reserve in %s: %w", name, err)
				}
			}
			for part := range slices.Chunk(del, maxElemsPerMsg) {
				if err := c.SetDeleteElements(ks, part); err != nil {
					return fmt.Errorf("release from %s: %w", name, err)
				}
			}
		}
		if err := r.openGate(c, s); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("write reservations: %w", err)
	}
	return nil
}

// openGate queues the removal of the gate element, if the gate is closed.
func (r *Reserver) openGate(c *nftables.Conn, s LimitSet) error {
	g := gateSet(r.table, s)
	els, err := r.elements(c, s, g.Name)
	if err != nil || len(els) == 0 {
		return err
	}
	if err := c.SetDeleteElements(g, els); err != nil {
		return fmt.Errorf("open gate %s: %w", g.Name, err)
	}
	return nil
}

func bySet(rs []Reservation) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range rs {
		if out[r.Set] == nil {
			out[r.Set] = map[string]int{}
		}
		out[r.Set][r.Key] = r.Depth
	}
	return out
}

// diffLevel returns the elements to add to and delete from the membership
// set of level j (a layer, or s.Over for the full set).
func diffLevel(s LimitSet, j int, have, want map[string]int) (add, del []nftables.SetElement, err error) {
	for _, k := range sortedKeys(want) {
		if want[k] >= j && have[k] < j {
			b, err := keyBytes(s, k)
			if err != nil {
				return nil, nil, err
			}
			add = append(add, nftables.SetElement{Key: b})
		}
	}
	for _, k := range sortedKeys(have) {
		if have[k] >= j && want[k] < j {
			b, err := keyBytes(s, k)
			if err != nil {
				return nil, nil, err
			}
			del = append(del, nftables.SetElement{Key: b})
		}
	}
	return add, del, nil
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

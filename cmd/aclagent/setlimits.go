package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/slxsh/slxsh/internal/nft"
)

// Bounds of --limit-set-size; 0 (the default) leaves the limit sets
// unsized. A set declared with 2^24 elements already preallocates 512 MiB
// of kernel memory (nft.SetTableMemory).
const (
	minLimitSetSize = 0
	maxLimitSetSize = 1 << 24
)

// meminfoPath is where the default of --limit-set-memory comes from.
var meminfoPath = "/proc/meminfo"

// setLimits puts --limit-set-size and --limit-set-memory into o: the
// declared size of every limit set (0: unsized, grown on demand up to
// nft.UnsizedSetCap keys), and the most kernel memory the sets of a config
// may take when full (default: one eighth of MemTotal; 0: no check).
func setLimits(f *flags, o *nft.Options) error {
	if f.setSize < minLimitSetSize || f.setSize > maxLimitSetSize {
		return fmt.Errorf("--limit-set-size %d: want %d to %d", f.setSize, minLimitSetSize, maxLimitSetSize)
	}
	o.SetSize = uint32(f.setSize)
	switch {
	case f.setMemory < -1:
		return fmt.Errorf("--limit-set-memory %d: want MiB, 0 for no check", f.setMemory)
	case f.setMemory == -1:
		total, err := memTotal(meminfoPath)
		if err != nil {
			return fmt.Errorf("default of --limit-set-memory: %w (give it in MiB, 0 for no check)", err)
		}
		o.MaxSetMemory = total / 8
	default:
		o.MaxSetMemory = uint64(f.setMemory) << 20
	}
	o.ConntrackMax = conntrackMax(conntrackMaxPath)
	return nil
}

// conntrackMaxPath is where the size of the conntrack table is read.
var conntrackMaxPath = "/proc/sys/net/netfilter/nf_conntrack_max"

// conntrackMax reads the size of the conntrack table (0 when it cannot:
// the memory check then counts every connlimit set full).
func conntrackMax(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// memTotal reads MemTotal from a file in /proc/meminfo format, in bytes.
func memTotal(path string) (uint64, error) {
	file, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: MemTotal: %w", path, err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("%s: no MemTotal", path)
}

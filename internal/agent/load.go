package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
	"github.com/slxsh/slxsh/internal/nft"
)

// LoadAverage reads the 1-minute load average from /proc/loadavg.
func LoadAverage() (float64, error) { return LoadAverageFrom("/proc/loadavg") }

// LoadAverageFrom reads the 1-minute load average from a file in the
// format of /proc/loadavg.
func LoadAverageFrom(path string) (float64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty %s", path)
	}
	return strconv.ParseFloat(f[0], 64)
}

// ArmLoad brings every load-limit flag in line with the current load.
func (a *Agent) ArmLoad() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armLoadLocked()
}

// armLoadLocked sets each load set's flag: on while the 1-minute load
// average is above the entry's load-limit. A set that was just created
// (after an apply or a drift repair) is empty, i.e. not refusing, until
// this runs; the agent calls it right after every install and every second.
func (a *Agent) armLoadLocked() {
	// The kernel cannot see the load average: the agent puts an entry's
	// flag (nft.SetLoad) in while the load is over its `load-limit`.
	fs := a.opts.Kernel
	if a.ruleset == nil {
		return
	}
	var load float64
	loaded := false
	for _, s := range a.ruleset.Sets {
		if s.Kind != nft.SetLoad {
			continue
		}
		limit := a.loadLimitLocked(s.Entry)
		if limit == nil {
			continue
		}
		if !loaded {
			var err error
			if load, err = a.opts.Load(); err != nil {
				a.log.Warn("cannot read the load average", "err", err)
				return
			}
			loaded = true
		}
		over := load*100 > float64(limit.Hundredths)
		changed, err := fs.SetFlag(s.Name, s.Entry.Family, over)
		switch {
		case err != nil:
			a.log.Warn("cannot set load-limit flag", "set", s.Name, "err", err)
		case changed:
			a.log.Info("load-limit", "acl", s.Entry.ACL, "seq", s.Entry.Seq, "load", load,
				"limit", float64(limit.Hundredths)/100, "refusing", over)
		}
	}
}

// loadLimitLocked finds the load-limit of the entry a set belongs to.
func (a *Agent) loadLimitLocked(r nft.EntryRef) *acl.LoadLimit {
	l := a.running.ACL(r.Family, r.ACL)
	if l == nil {
		return nil
	}
	for _, e := range l.Entries {
		if e.Seq == r.Seq {
			return e.LoadLimit
		}
	}
	return nil
}

package agent

import (
	"maps"
)

// Baselines of `clear access-list counters` are kept next to the state
// file (StatePath + ".counters", in /run like the state itself), so that a
// restarted agent, which adopts its table with the kernel's counters as
// they are, also shows them from the same clear. After a reboot the table,
// the state and the baselines are gone together.

// setBaselineLocked records a counter's value at a clear; a zero baseline
// is the same as none and is not kept.
func (a *Agent) setBaselineLocked(name string, v uint64) {
	if v == 0 {
		delete(a.baseline, name)
		return
	}
	a.baseline[name] = v
}

// baselinePath is where the baselines are kept ("": nowhere).
func (a *Agent) baselinePath() string {
	if a.opts.StatePath == "" {
		return ""
	}
	return a.opts.StatePath + ".counters"
}

// saveBaselinesLocked writes the baselines (removes the file when there
// are none). A failure is logged: show is then off after a restart only.
func (a *Agent) saveBaselinesLocked() {
	a.publishBaselinesLocked()
	var v any
	if len(a.baseline) > 0 {
		v = a.baseline
	}
	a.keepStateJSON(a.baselinePath(), "counter baselines", v)
}

// loadBaselines reads the baselines a previous agent left (called by Start
// when it adopts that agent's running config). A missing file means none.
func (a *Agent) loadBaselines() error {
	b := map[string]uint64{}
	if ok, err := readStateJSON(a.baselinePath(), &b); err != nil || !ok {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.baseline = b
	a.publishBaselinesLocked()
	return nil
}

// publishBaselinesLocked gives the views (Counters) a copy of the
// baselines to read without the lock.
func (a *Agent) publishBaselinesLocked() {
	b := maps.Clone(a.baseline)
	a.liveBaselines.Store(&b)
}

// baselines returns the published baselines (nil: none).
func (a *Agent) baselines() map[string]uint64 {
	if b := a.liveBaselines.Load(); b != nil {
		return *b
	}
	return nil
}

// dropResetBaselinesLocked forgets the baselines of counters that are now
// below them: the kernel recreated those counters at zero (the table was
// deleted and restored by drift repair, or deleted while no agent ran), so
// they count from their own zero again. Without this, such a counter would
// show too little once it grew past its old baseline.
func (a *Agent) dropResetBaselinesLocked() {
	if len(a.baseline) == 0 {
		return
	}
	raw, err := a.opts.Kernel.Counters()
	if err != nil {
		a.log.Warn("cannot read counters to check the baselines", "err", err)
		return
	}
	dropped := false
	for name, b := range a.baseline {
		if raw[name].Packets < b {
			delete(a.baseline, name)
			dropped = true
		}
	}
	if dropped {
		a.saveBaselinesLocked()
	}
}

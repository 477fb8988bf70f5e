package nft_test

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// cpuClock reads how long the machine's CPUs have been busy: wall time
// times the CPUs, less their idle time (cpuidle's per-state counters, in
// µs) and the time the hypervisor took from them (steal, in /proc/stat).
// It reports ok false where cpuidle keeps no counters.
type cpuClock struct {
	wall       time.Time
	idle, stol time.Duration
}

func readCPUClock() (cpuClock, bool) {
	c := cpuClock{wall: time.Now()}
	files, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/cpuidle/state[0-9]*/time")
	if len(files) == 0 {
		return c, false
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, false
		}
		us, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			return c, false
		}
		c.idle += time.Duration(us) * time.Microsecond
	}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return c, false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	if s.Scan() {
		// cpu user nice system idle iowait irq softirq steal ...
		fields := strings.Fields(s.Text())
		if len(fields) > 8 {
			j, _ := strconv.ParseInt(fields[8], 10, 64)
			c.stol = time.Duration(j) * 10 * time.Millisecond // USER_HZ 100
		}
	}
	return c, true
}

// busySince is the CPU time the machine was busy since c.
func (c cpuClock) busySince(now cpuClock) time.Duration {
	wall := now.wall.Sub(c.wall) * time.Duration(runtime.NumCPU())
	return wall - (now.idle - c.idle) - (now.stol - c.stol)
}

// Package proccpu reads a process's CPU time on Linux, for the benchmarks that say which process spent
// the time.
package proccpu

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Time is the user+system CPU time of process pid so far (its threads included), from
// /proc/<pid>/stat, in clock ticks of 10 ms (USER_HZ is 100 on Linux).
func Time(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("proccpu: no process (pid %d)", pid)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("proccpu: %w", err)
	}
	return parse(b)
}

func parse(stat []byte) (time.Duration, error) {
	// The fields after the command name (which may hold spaces and parentheses) start after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 > len(stat) {
		return 0, fmt.Errorf("proccpu: %q is not a /proc/<pid>/stat line", stat)
	}
	f := strings.Fields(string(stat[i+2:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("proccpu: %d fields after the command name, want at least 13", len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("proccpu: utime %q, stime %q are not numbers", f[11], f[12])
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

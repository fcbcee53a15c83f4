// Package procfs reads from Linux's /proc what the benchmarks report of
// processes and of the machine: CPU time, peak RSS and the load average.
package procfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// the benchmarks run on.
const clockTick = 100

// statFields are the fields of a /proc/PID/stat after the command's name,
// which is in parentheses and may hold spaces: [2] is the process group,
// [11] to [14] utime, stime, cutime and cstime.
func statFields(stat []byte) []string {
	s := string(stat)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
}

// CPU is a process's user and system time, in seconds.
func CPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := statFields(data)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, data)
	}
	return (utime + stime) / clockTick, nil
}

// GroupCPU is the CPU time of a process group's processes, with that of
// the children they reaped (a PostgreSQL server's ended backends), in
// seconds.
func GroupCPU(pgid int) float64 {
	var total float64
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := statFields(data)
		if len(f) < 15 || f[2] != strconv.Itoa(pgid) {
			continue
		}
		for _, v := range f[11:15] { // utime stime cutime cstime
			t, _ := strconv.ParseFloat(v, 64)
			total += t / clockTick
		}
	}
	return total
}

// MachineBusy is the CPU time the whole machine spent working, and the time
// the hypervisor gave its CPUs to other machines, in seconds.
func MachineBusy() (busy, steal float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, 0
	}
	// user nice system idle iowait irq softirq steal
	for j, f := range fields[1:9] {
		v, _ := strconv.ParseFloat(f, 64)
		switch j {
		case 3, 4:
		case 7:
			steal += v
		default:
			busy += v
		}
	}
	return busy / clockTick, steal / clockTick
}

// PeakRSS is a process's peak resident set (VmHWM), in MiB.
func PeakRSS(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

// ResetPeakRSS sets a process's peak resident set to its current one
// (writing 5 to clear_refs, proc(5)), so that PeakRSS then measures a phase.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// LoadAverage is the machine's 1, 5 and 15 minute load averages, printed
// with the figures: the machine may be shared, and a loaded one slows every
// figure.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// process is a controller's process on this node, read from /proc: its CPU
// time (utime+stime) and its peak RSS (VmHWM), reset at the start of a
// batch through clear_refs. The bench runs on the node, as root, like the
// rest of the local cluster.
type process struct {
	name  string
	pid   int
	ticks int64
}

// clockTicks is USER_HZ, 100 on Linux.
const clockTicks = 100

// pidOfContainer is the process whose cgroup names the container id.
func pidOfContainer(id string) (int, error) {
	if id == "" {
		return 0, fmt.Errorf("no container id")
	}
	cgroups, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, path := range cgroups {
		data, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(data), id) {
			continue
		}
		return strconv.Atoi(filepath.Base(filepath.Dir(path)))
	}
	return 0, fmt.Errorf("no process in container %s on this node", id)
}

func (p *process) cpuTicks() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", p.pid, data)
	}
	return utime + stime, nil
}

func (p *process) begin() error {
	// 5 resets the peak RSS to the current RSS (proc(5)).
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.pid), []byte("5"), 0); err != nil {
		return err
	}
	t, err := p.cpuTicks()
	p.ticks = t
	return err
}

// end is the CPU seconds since begin and the peak RSS in MiB.
func (p *process) end() (float64, float64, error) {
	t, err := p.cpuTicks()
	if err != nil {
		return 0, 0, err
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				return 0, 0, err
			}
			return float64(t-p.ticks) / clockTicks, kb / 1024, nil
		}
	}
	return 0, 0, fmt.Errorf("/proc/%d/status has no VmHWM", p.pid)
}

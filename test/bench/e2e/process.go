package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/backflow-dev/backflow/test/bench/procfs"
)

// process is a controller's process on this node, read from /proc: its CPU
// time (utime+stime) and its peak RSS (VmHWM), reset at the start of a
// batch through clear_refs. The bench runs on the node, as root, like the
// rest of the local cluster.
type process struct {
	name string
	pid  int
	cpu  float64 // seconds, at begin
}

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

func (p *process) begin() error {
	if err := procfs.ResetPeakRSS(p.pid); err != nil {
		return err
	}
	cpu, err := procfs.CPU(p.pid)
	p.cpu = cpu
	return err
}

// end is the CPU seconds since begin and the peak RSS in MiB.
func (p *process) end() (float64, float64, error) {
	cpu, err := procfs.CPU(p.pid)
	if err != nil {
		return 0, 0, err
	}
	peak, err := procfs.PeakRSS(p.pid)
	return cpu - p.cpu, peak, err
}

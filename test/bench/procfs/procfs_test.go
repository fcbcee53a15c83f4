package procfs

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test process's own figures, read back through /proc, match what the
// kernel tells it directly.
func TestOwnProcess(t *testing.T) {
	// Enough CPU time for several clock ticks.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); {
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	cpu, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	own := float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
	if cpu < 0.1 || cpu > own+0.05 {
		t.Errorf("CPU is %.2f s, getrusage says %.2f s", cpu, own)
	}
	pgid, err := syscall.Getpgid(0)
	if err != nil {
		t.Fatal(err)
	}
	if group := GroupCPU(pgid); group < cpu {
		t.Errorf("GroupCPU of the test's own group is %.2f s, less than the test's %.2f s", group, cpu)
	}
	peak, err := PeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if maxrss := float64(ru.Maxrss) / 1024; peak <= 0 || peak > maxrss*1.5+1 {
		t.Errorf("PeakRSS is %.1f MiB, getrusage's maxrss %.1f MiB", peak, maxrss)
	}
	if err := ResetPeakRSS(os.Getpid()); err != nil {
		t.Error(err)
	}
	if busy, _ := MachineBusy(); busy < cpu {
		t.Errorf("the machine was busy %.2f s, less than this process's %.2f s", busy, cpu)
	}
	if f := strings.Fields(LoadAverage()); len(f) != 3 {
		t.Errorf("LoadAverage is %q, want three figures", LoadAverage())
	}
}

package source

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A source's standard output comes through a pipe of stdoutPipeSize, not
// the kernel's 64 KiB.
func TestProcessOutputPipeIsEnlarged(t *testing.T) {
	if max, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(max))); err == nil && n < stdoutPipeSize {
			t.Skipf("this kernel allows pipes of %d bytes at most", n)
		}
	}
	running, err := Process{Args: []string{"sleep", "5"}}.Start(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	f, ok := running.stdout.(*os.File)
	if !ok {
		t.Fatalf("the output is a %T, not a pipe", running.stdout)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var sizeErr error
	if err := raw.Control(func(fd uintptr) { size, sizeErr = unix.FcntlInt(fd, unix.F_GETPIPE_SZ, 0) }); err != nil {
		t.Fatal(err)
	}
	if sizeErr != nil {
		t.Fatal(sizeErr)
	}
	if size != stdoutPipeSize {
		t.Errorf("the output pipe holds %d bytes, want %d", size, stdoutPipeSize)
	}
}

package source

import (
	"context"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// A source's standard output comes through a pipe of stdoutPipeSize, not
// the kernel's 64 KiB.
func TestProcessOutputPipeIsEnlarged(t *testing.T) {
	running, err := Process{Args: []string{"sleep", "5"}}.Start(context.Background(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer running.Stop()
	f, ok := running.stdout.(*os.File)
	if !ok {
		t.Fatalf("the output is a %T, not a pipe", running.stdout)
	}
	size, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
	if err != nil {
		t.Fatal(err)
	}
	if size != stdoutPipeSize {
		t.Errorf("the output pipe holds %d bytes, want %d", size, stdoutPipeSize)
	}
}

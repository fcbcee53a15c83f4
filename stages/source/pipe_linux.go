package source

import (
	"os"

	"golang.org/x/sys/unix"
)

// enlargePipe asks the kernel for a pipe of size bytes; a refusal (a
// pipe-max-size set below it) leaves the pipe as it was, which works, only
// slower.
func enlargePipe(f *os.File, size int) {
	raw, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) { _, _ = unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size) })
}

package storage

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// bytesAcked is how many bytes the peer of a TCP connection acknowledged.
func bytesAcked(conn net.Conn) (uint64, bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var acked uint64
	var infoErr error
	if err := raw.Control(func(fd uintptr) {
		var info *unix.TCPInfo
		if info, infoErr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); infoErr == nil {
			acked = info.Bytes_acked
		}
	}); err != nil || infoErr != nil {
		return 0, false
	}
	return acked, true
}

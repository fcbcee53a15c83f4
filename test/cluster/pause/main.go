// Command pause is the pod sandbox's process on the local stack's node: it
// holds the pod's namespaces until the kubelet stops the sandbox. It stands in
// for registry.k8s.io/pause, which cannot be pulled here, and does what that
// one does: wait for SIGINT or SIGTERM and reap orphaned children.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			return
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

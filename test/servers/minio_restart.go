package servers

import "syscall"

// Kill kills the server with SIGKILL, as an outage would, keeping its data
// and port for Restart.
func (m *MinIO) Kill() {
	if m.proc == nil || m.proc.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-m.proc.cmd.Process.Pid, syscall.SIGKILL)
	_ = m.proc.cmd.Wait()
	m.proc.log.Close()
	m.proc = nil
}

// Restart starts a killed server again on its port with its data.
func (m *MinIO) Restart() error { return m.start() }

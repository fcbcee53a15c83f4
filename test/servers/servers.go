// Package servers starts real MinIO, PostgreSQL and MariaDB servers for tests,
// each in a throwaway directory on a free loopback port, and stops them by PID.
package servers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/backflow-dev/backflow/test/tools"
)

// loopback is where every test server listens.
const loopback = "127.0.0.1"

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check until it succeeds or the timeout passes.
func waitFor(what string, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = check(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s: %w", what, timeout, err)
}

// process is a server started by a test.
type process struct {
	cmd *exec.Cmd
	log *os.File
}

func startProcess(logPath string, name string, args []string, env []string) (*process, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	return &process{cmd: cmd, log: log}, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after a grace period.
func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	p.log.Close()
}

// MinIO is a running MinIO server with one bucket.
type MinIO struct {
	Endpoint  string // http://127.0.0.1:PORT, or https:// with WithTLS
	AccessKey string
	SecretKey string
	Bucket    string
	// CAPEM is the CA that signed the server's certificate (WithTLS).
	CAPEM []byte
	dir   string
	proc  *process
	// bin, args and env start the process again (Restart).
	bin       string
	args, env []string
}

// MinIOOption changes how a MinIO server is started.
type MinIOOption func(*minioConfig)

type minioConfig struct{ tls bool }

// WithTLS serves https with a certificate for 127.0.0.1 signed by a CA made
// for this server alone (MinIO.CAPEM).
func WithTLS() MinIOOption { return func(c *minioConfig) { c.tls = true } }

// minioBinary finds the MinIO server built by test/tools/build.sh.
func minioBinary() (string, error) {
	if p := os.Getenv("BACKFLOW_MINIO"); p != "" {
		return p, nil
	}
	return tools.Cached("minio")
}

// StartMinIO starts a MinIO server with an empty bucket "backups".
func StartMinIO(opts ...MinIOOption) (*MinIO, error) {
	var cfg minioConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "backflow-minio-")
	if err != nil {
		return nil, err
	}
	m := &MinIO{
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), AccessKey: "backflow-test", SecretKey: "backflow-test-secret",
		Bucket: "backups", dir: dir,
	}
	args := []string{"server", "--quiet", "--address", "127.0.0.1:" + strconv.Itoa(port), "--console-address", "127.0.0.1:0"}
	if cfg.tls {
		certs := filepath.Join(dir, "certs")
		if m.CAPEM, err = writeServerCertificate(certs, loopback); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		m.Endpoint = "https://127.0.0.1:" + strconv.Itoa(port)
		args = append(args, "--certs-dir", certs)
	}
	m.bin, m.args = bin, append(args, filepath.Join(dir, "data"))
	m.env = []string{"MINIO_ROOT_USER=" + m.AccessKey, "MINIO_ROOT_PASSWORD=" + m.SecretKey, "MINIO_BROWSER=off", "MINIO_UPDATE=off"}
	if err := m.start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	err = m.MakeBucket(context.Background(), m.Bucket)
	if err != nil {
		m.Stop()
		return nil, err
	}
	return m, nil
}

// start starts the process and waits until it serves.
func (m *MinIO) start() error {
	var err error
	m.proc, err = startProcess(filepath.Join(m.dir, "minio.log"), m.bin, m.args, m.env)
	if err != nil {
		return err
	}
	err = waitFor("minio", 60*time.Second, func() error {
		resp, err := m.httpClient().Get(m.Endpoint + "/minio/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("health: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		m.proc.stop()
	}
	return err
}

// Stop stops the server and removes its data.
func (m *MinIO) Stop() {
	m.proc.stop()
	os.RemoveAll(m.dir)
}

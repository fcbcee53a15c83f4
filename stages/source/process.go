package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Process is a command to run, as an argument list, with the files it needs
// (a my.cnf, a mongo config) written only for its lifetime.
type Process struct {
	// Args[0] is the program, looked up in PATH.
	Args []string
	// Env is added to the inherited environment, from which backflow's own
	// secrets (the storage credentials, the connection Secret) are removed.
	Env []string
	// Files maps a file name, created in a private temporary directory with
	// mode 0600, to its content. "{file:NAME}" in Args is replaced by the
	// file's path.
	Files map[string]string
	// Stdin feeds the process, for restores.
	Stdin io.Reader
	// Stdout receives its output when the caller does not read it with
	// Output.
	Stdout io.Writer
}

// inheritedEnv is the environment of the step minus the variables that carry
// backflow's own secrets: a dump command, especially a user's, sees only what
// is meant for it.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "BACKFLOW_") || strings.HasPrefix(name, "AWS_") || name == "AGE_IDENTITY" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// stderrTailSize is how much of a command's standard error is kept for the
// error message.
const stderrTailSize = 2048

// tailBuffer keeps the last bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - stderrTailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(bytes.ToValidUTF8(t.buf, nil)))
}

// stdoutPipeSize is the capacity asked of the pipe from a process's
// standard output, 1 MiB: Linux's default pipe-max-size, which any process
// may ask for. With the default 64 KiB, a tool that writes in small pieces
// (mariadb-dump writes 4 KiB at a time) wakes the dump for each, and stalls
// as soon as the pipeline takes longer than 64 KiB of its output to come
// back for more; on the development machine's two cores that made
// mariadb_dump_vs_alone 0.59, and 0.68 with 1 MiB.
const stdoutPipeSize = 1 << 20

// Running is a started Process.
type Running struct {
	cmd     *exec.Cmd
	stdout  io.ReadCloser
	stderr  *tailBuffer
	tmpDir  string
	waitErr error
	waited  bool
	name    string
}

// Start starts the process. Its standard error goes to stderr and is kept for
// error messages.
func (p Process) Start(ctx context.Context, stderr io.Writer) (*Running, error) {
	if len(p.Args) == 0 {
		return nil, errors.New("no command to run")
	}
	r := &Running{stderr: &tailBuffer{}, name: p.Args[0]}
	args := append([]string(nil), p.Args...)
	if len(p.Files) > 0 {
		dir, err := os.MkdirTemp("", "backflow-")
		if err != nil {
			return nil, err
		}
		r.tmpDir = dir
		for name, content := range p.Files {
			path := dir + "/" + name
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				r.cleanup()
				return nil, err
			}
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], "{file:"+name+"}", path)
			}
		}
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(inheritedEnv(), p.Env...)
	cmd.Stdin = p.Stdin
	cmd.Stderr = io.MultiWriter(stderr, r.stderr)
	// Own process group, so a cancelled step stops the whole pipeline the
	// command may have started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 0
	if p.Stdout != nil {
		cmd.Stdout = p.Stdout
	} else {
		out, err := cmd.StdoutPipe()
		if err != nil {
			r.cleanup()
			return nil, err
		}
		r.stdout = out
		if f, ok := out.(*os.File); ok {
			enlargePipe(f, stdoutPipeSize)
		}
	}
	if err := cmd.Start(); err != nil {
		r.cleanup()
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("%s is not installed in this image: %w", args[0], err)
		}
		return nil, fmt.Errorf("starting %s: %w", args[0], err)
	}
	r.cmd = cmd
	return r, nil
}

// Output is the process's standard output. It ends with io.EOF only when the
// process exited successfully; otherwise the last Read returns the process's
// error, so that nothing downstream takes a failed dump's output for a
// complete one.
func (r *Running) Output() io.Reader { return exitCheckingReader{r} }

type exitCheckingReader struct{ r *Running }

func (e exitCheckingReader) Read(p []byte) (int, error) {
	n, err := e.r.stdout.Read(p)
	if errors.Is(err, io.EOF) {
		if werr := e.r.Wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Wait waits for the process to exit and says how it failed, with the tail
// of its standard error.
func (r *Running) Wait() error {
	if r.waited {
		return r.waitErr
	}
	r.waited = true
	err := r.cmd.Wait()
	r.cleanup()
	if err != nil {
		msg := fmt.Sprintf("%s failed: %v", r.name, describeExit(err))
		if tail := r.stderr.String(); tail != "" {
			msg += ": " + lastLines(tail, 5)
		}
		r.waitErr = errors.New(msg)
	}
	return r.waitErr
}

// Stop kills the process group and reaps the process.
func (r *Running) Stop() {
	if r.cmd != nil && r.cmd.Process != nil && !r.waited {
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		_ = r.Wait()
	}
}

func (r *Running) cleanup() {
	if r.tmpDir != "" {
		_ = os.RemoveAll(r.tmpDir)
		r.tmpDir = ""
	}
}

func describeExit(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Sprintf("killed by signal %s", ws.Signal())
		}
		return fmt.Sprintf("exit code %d", exit.ExitCode())
	}
	return err.Error()
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// Int64Output runs a process that prints one integer, such as a query's
// single value, and parses it; an empty output (SQL's NULL) is 0.
func (p Process) Int64Output(ctx context.Context) (int64, error) {
	var out bytes.Buffer
	p.Stdout = &out
	running, err := p.Start(ctx, io.Discard)
	if err != nil {
		return 0, err
	}
	if err := running.Wait(); err != nil {
		return 0, err
	}
	text := strings.TrimSpace(out.String())
	if text == "" || text == "NULL" {
		return 0, nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s printed %q, not a number", p.Args[0], lastLines(text, 1))
	}
	return n, nil
}

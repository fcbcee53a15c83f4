package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source/mongodb"
)

// Consumer is a started restore target that reads the plain stream.
type Consumer struct {
	// Input takes the plain stream. Close it at the end of the stream.
	Input io.WriteCloser
	// Wait waits for the target to finish and says how it failed.
	Wait func() error
	// Abort stops the target before the stream ended.
	Abort func()
}

// StartRestore starts the target that restores a stream of the given format
// (see Format).
func StartRestore(ctx context.Context, target v1.RestoreTarget, format string, opts Options, stdout, stderr io.Writer) (*Consumer, error) {
	if target.PVC != nil {
		pr, pw := io.Pipe()
		dir := filepath.Join(opts.VolumeRoot, filepath.FromSlash(target.PVC.Path))
		return consumerOf(pr, pw, func() error { return Untar(pr, dir) }, func() {}), nil
	}
	if target.MongoDB != nil {
		restoreOpts, err := mongoTarget(target.MongoDB, format, opts)
		if err != nil {
			return nil, err
		}
		return startMongoRestore(ctx, restoreOpts), nil
	}
	proc, err := RestoreProcess(target, format, opts)
	if err != nil {
		return nil, err
	}
	proc.Stdout = stdout
	return proc.StartConsumer(ctx, stderr)
}

// StartConsumer starts a process that reads a stream on its standard input.
// A process may stop reading before the end (pg_restore --list reads only
// the table of contents): once it exited successfully, the rest of the
// stream is discarded, so that the caller can still read its source to the
// end and check it; once it failed, writes fail at once with its error.
func (p Process) StartConsumer(ctx context.Context, stderr io.Writer) (*Consumer, error) {
	pr, pw := io.Pipe()
	p.Stdin = pr
	running, err := p.Start(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return consumerOf(pr, pw, running.Wait, running.Stop), nil
}

// consumerOf is a Consumer whose Input is pw and whose work, consume,
// reads pr. Once consume returned, the pipe is closed: after a success what
// is written later is discarded (the stream may go on past what the target
// needed, and the caller still reads its source to the end to check it);
// after a failure writes fail at once with its error. stop ends consume
// early, on Abort.
func consumerOf(pr *io.PipeReader, pw *io.PipeWriter, consume func() error, stop func()) *Consumer {
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = consume()
		if waitErr != nil {
			pr.CloseWithError(waitErr)
		} else {
			pr.CloseWithError(errConsumerDone)
		}
		close(done)
	}()
	return &Consumer{
		Input: &consumerInput{pw: pw},
		Wait: func() error {
			<-done
			return waitErr
		},
		Abort: func() {
			pw.CloseWithError(errors.New("restore aborted"))
			stop()
		},
	}
}

// errConsumerDone closes the input of a consumer that exited successfully.
var errConsumerDone = errors.New("the consumer finished")

// consumerInput discards what is written after its consumer finished
// successfully.
type consumerInput struct {
	pw *io.PipeWriter
}

func (c *consumerInput) Write(p []byte) (int, error) {
	n, err := c.pw.Write(p)
	if errors.Is(err, errConsumerDone) {
		return len(p), nil
	}
	return n, err
}

func (c *consumerInput) Close() error { return c.pw.Close() }

// RestoreProcess is the command that restores a stream of the given format
// into a database or a user's command.
func RestoreProcess(target v1.RestoreTarget, format string, opts Options) (Process, error) {
	switch {
	case target.PostgreSQL != nil:
		t := target.PostgreSQL
		conn, err := ResolveConnection(t.Connection, opts.Namespace, PostgreSQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		var args []string
		switch format {
		case "pg-plain":
			args = []string{"psql", "--no-password", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"}
		case "pg-custom", "pg-tar":
			// A conninfo without dbname makes libpq take PGDATABASE from the
			// environment: the database never appears on the command line, and
			// -d still tells pg_restore to restore rather than print SQL.
			args = []string{"pg_restore", "--no-password", "--exit-on-error", "--no-owner", "--dbname=application_name=backflow"}
			if t.Clean {
				args = append(args, "--clean", "--if-exists")
			}
		default:
			return Process{}, fmt.Errorf("a %s backup cannot be restored into PostgreSQL", format)
		}
		return Process{Args: append(args, t.ExtraArgs...), Env: postgresEnv(conn)}, nil
	case target.MySQL != nil:
		t := target.MySQL
		if format != "mysql" {
			return Process{}, fmt.Errorf("a %s backup cannot be restored into MySQL", format)
		}
		conn, err := ResolveConnection(t.Connection, opts.Namespace, MySQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		args := []string{mysqlProgram(t.Flavor, "client"), "--defaults-extra-file={file:my.cnf}", "--binary-mode", "--default-character-set=utf8mb4"}
		return Process{Args: append(args, t.ExtraArgs...), Files: map[string]string{"my.cnf": myCnf(conn, true)}}, nil
	case target.Command != nil:
		c := target.Command
		var env []string
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+"="+e.Value)
			}
		}
		return Process{Args: append(append([]string(nil), c.Command...), c.Args...), Env: env}, nil
	case target.MongoDB != nil:
		return Process{}, errors.New("MongoDB is restored by backflow itself, not by a command")
	}
	return Process{}, errors.New("the target names no postgresql, mysql, mongodb, pvc or command")
}

// mongoTarget checks that a backup of format can go into a MongoDB target.
func mongoTarget(t *v1.MongoDBTarget, format string, opts Options) (mongodb.RestoreOptions, error) {
	if format != FormatMongoDBArchive {
		return mongodb.RestoreOptions{}, fmt.Errorf("a %s backup cannot be restored into MongoDB", format)
	}
	return mongoRestoreOptions(t, opts)
}

// StartRestoreTest starts a verify's restore test: into the scratch
// database target, whose check runs once the stream ended (query, or for
// MongoDB the document counts); without a target, a structural check of a
// PostgreSQL custom or tar archive with pg_restore --list.
func StartRestoreTest(ctx context.Context, target *v1.RestoreTarget, format, query string, opts Options, stderr io.Writer) (*Consumer, error) {
	switch {
	case target == nil:
		if format != "pg-custom" && format != "pg-tar" {
			return nil, fmt.Errorf("a restore test without a scratch database needs a PostgreSQL custom or tar backup, not %s", format)
		}
		return Process{Args: []string{"pg_restore", "--list"}, Stdout: io.Discard}.StartConsumer(ctx, stderr)
	case target.MongoDB != nil:
		restoreOpts, err := mongoTarget(target.MongoDB, format, opts)
		if err != nil {
			return nil, err
		}
		return mongoRestoreTest(ctx, restoreOpts, query)
	}
	c, err := StartRestore(ctx, *target, format, opts, io.Discard, stderr)
	if err != nil || query == "" {
		return c, err
	}
	wait := c.Wait
	c.Wait = func() error {
		if err := wait(); err != nil {
			return err
		}
		_, err := RunCheckQuery(ctx, *target, query, opts, stderr)
		return err
	}
	return c, nil
}

// CheckQueryProcess runs query against a database and prints its rows, one
// per line, for a restore test.
func CheckQueryProcess(target v1.RestoreTarget, query string, opts Options) (Process, error) {
	switch {
	case target.PostgreSQL != nil:
		conn, err := ResolveConnection(target.PostgreSQL.Connection, opts.Namespace, PostgreSQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		return Process{
			Args: []string{"psql", "--no-password", "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--tuples-only", "--no-align", "--command=" + query},
			Env:  postgresEnv(conn),
		}, nil
	case target.MySQL != nil:
		conn, err := ResolveConnection(target.MySQL.Connection, opts.Namespace, MySQLPort, opts.Getenv)
		if err != nil {
			return Process{}, err
		}
		return Process{
			Args:  []string{mysqlProgram(target.MySQL.Flavor, "client"), "--defaults-extra-file={file:my.cnf}", "--batch", "--skip-column-names", "--execute=" + query},
			Files: map[string]string{"my.cnf": myCnf(conn, true)},
		}, nil
	}
	return Process{}, errors.New("a check query needs a postgresql or mysql database")
}

// RunCheckQuery runs a check query and fails unless it returns a row.
func RunCheckQuery(ctx context.Context, target v1.RestoreTarget, query string, opts Options, stderr io.Writer) (string, error) {
	proc, err := CheckQueryProcess(target, query, opts)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	proc.Stdout = &out
	running, err := proc.Start(ctx, stderr)
	if err != nil {
		return "", err
	}
	if err := running.Wait(); err != nil {
		return "", fmt.Errorf("check query: %w", err)
	}
	rows := strings.TrimSpace(out.String())
	if rows == "" {
		return "", fmt.Errorf("check query returned no rows")
	}
	return rows, nil
}

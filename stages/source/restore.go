package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
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
// (a manifest's Format), once its engine said it accepts it.
func StartRestore(ctx context.Context, target v1.RestoreTarget, format string, opts Options, stdout, stderr io.Writer) (*Consumer, error) {
	e, err := acceptingEngine(target, format)
	if err != nil {
		return nil, err
	}
	return e.StartRestore(ctx, target, format, opts, stdout, stderr)
}

// acceptingEngine is the engine of a target, which must accept the format.
func acceptingEngine(target v1.RestoreTarget, format string) (Engine, error) {
	e, err := ForTarget(target)
	if err != nil {
		return nil, err
	}
	if !e.Accepts(format) {
		return nil, fmt.Errorf("a %s backup cannot be restored into %s", format, e.Title())
	}
	return e, nil
}

// StartRestoreTest starts a verify's restore test: into the scratch
// database target, with the check of its engine once the stream ended (see
// RestoreTester); without a target, a structural check by the engine that
// wrote the format, if it can (see ArchiveChecker).
func StartRestoreTest(ctx context.Context, target *v1.RestoreTarget, format, query string, opts Options, stderr io.Writer) (*Consumer, error) {
	if target == nil {
		if checker, ok := archiveCheckerOf(format); ok {
			return checker.StartArchiveCheck(ctx, stderr)
		}
		var checkable []string
		for _, f := range Formats() {
			if _, ok := archiveCheckerOf(f.Name); ok {
				checkable = append(checkable, f.Name)
			}
		}
		return nil, fmt.Errorf("a restore test without a scratch database needs a %s backup, not %s", list(checkable, "or"), format)
	}
	e, err := acceptingEngine(*target, format)
	if err != nil {
		return nil, err
	}
	tester, ok := e.(RestoreTester)
	if !ok {
		return nil, fmt.Errorf("%s has no restore test", e.Title())
	}
	return tester.StartRestoreTest(ctx, *target, format, query, opts, stderr)
}

// archiveCheckerOf is the engine that wrote a format when it can check it
// without a database.
func archiveCheckerOf(format string) (ArchiveChecker, bool) {
	writer, _ := WriterOf(format)
	checker, ok := writer.(ArchiveChecker)
	return checker, ok && checker.ChecksArchive(format)
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

// Consume starts a target that runs in this process: consume reads the
// plain stream until its end, and its context is cancelled on Abort.
func Consume(ctx context.Context, consume func(context.Context, io.Reader) error) *Consumer {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	return consumerOf(pr, pw, func() error {
		defer cancel()
		return consume(ctx, pr)
	}, cancel)
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

// RestoreAndQuery is the restore test of the SQL engines: e restores into
// the scratch database target and, once that succeeded, the check query runs
// unless query is empty. check is the query's process, which prints the rows
// the query returns; the test fails unless it returns one.
func RestoreAndQuery(ctx context.Context, e Runner, target v1.RestoreTarget, format, query string, opts Options, stderr io.Writer, check func() (Process, error)) (*Consumer, error) {
	c, err := e.StartRestore(ctx, target, format, opts, io.Discard, stderr)
	if err != nil || query == "" {
		return c, err
	}
	wait := c.Wait
	c.Wait = func() error {
		if err := wait(); err != nil {
			return err
		}
		proc, err := check()
		if err != nil {
			return err
		}
		return runCheckQuery(ctx, proc, stderr)
	}
	return c, nil
}

// runCheckQuery runs a check query and fails unless it returns a row.
func runCheckQuery(ctx context.Context, proc Process, stderr io.Writer) error {
	var out strings.Builder
	proc.Stdout = &out
	running, err := proc.Start(ctx, stderr)
	if err != nil {
		return err
	}
	if err := running.Wait(); err != nil {
		return fmt.Errorf("check query: %w", err)
	}
	if strings.TrimSpace(out.String()) == "" {
		return fmt.Errorf("check query returned no rows")
	}
	return nil
}

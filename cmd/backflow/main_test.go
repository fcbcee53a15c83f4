package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"

	"github.com/backflow-dev/backflow/controller/compiler"
)

// The exit code of a step comes from the storage's classification of its
// failure: an unreachable storage is worth a retry, an unknown host is not.
func TestExitCodeOfStorageFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := l.Addr().String()
	l.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "backflow-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "backflow-test-secret")
	for endpoint, want := range map[string]int{
		"http://" + refused:                         compiler.ExitCodeRetry,
		"http://backflow-no-such-host.invalid:9000": 1,
	} {
		cmd := newRootCommand()
		cmd.SetArgs([]string{"rotate", "--storage", "s3://backups/p?pathStyle=true&region=us-east-1&endpoint=" + endpoint, "--namespace", "ns", "--series", "x", "--keep-last", "2"})
		cmd.SetOut(&bytes.Buffer{})
		err := cmd.ExecuteContext(context.Background())
		if err == nil || exitCode(err) != want {
			t.Errorf("%s: exit code %d (%v), want %d", endpoint, exitCode(err), err, want)
		}
	}
}

// A step stopped from outside (its pod deleted in a drain) may be retried;
// the same failure without the signal is the step's own.
func TestExitCodeOfAStoppedStep(t *testing.T) {
	cause := errors.New("reading the source: context canceled")
	if got := exitCode(stoppedError{cause}); got != compiler.ExitCodeRetry {
		t.Errorf("stopped: exit code %d, want %d", got, compiler.ExitCodeRetry)
	}
	if got := exitCode(cause); got != 1 {
		t.Errorf("not stopped: exit code %d, want 1", got)
	}
}

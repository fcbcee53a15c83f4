package source

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
)

// Options are what a dump or restore needs besides the spec.
type Options struct {
	// Namespace of the resource, for Service host names.
	Namespace string
	// Getenv reads the connection Secret's values.
	Getenv func(string) string
	// VolumeRoot is where the PVC is mounted.
	VolumeRoot string
	// Version of backflow, for archives that name the tool that wrote them
	// (MongoDB's).
	Version string
}

// Producer is a started source: reading it yields the raw stream, which ends
// with io.EOF only when the source finished successfully.
type Producer struct {
	io.Reader
	stop func()
}

// NewProducer is a source whose stream r yields; stop ends it early and
// releases what it holds.
func NewProducer(r io.Reader, stop func()) *Producer { return &Producer{Reader: r, stop: stop} }

// Stop ends the source early and releases what it holds.
func (p *Producer) Stop() { p.stop() }

// StartProducer starts a process whose standard output is the raw stream.
func (p Process) StartProducer(ctx context.Context, stderr io.Writer) (*Producer, error) {
	running, err := p.Start(ctx, stderr)
	if err != nil {
		return nil, err
	}
	return NewProducer(running.Output(), running.Stop), nil
}

// DatabaseName is the database of an engine that dumps databases, for
// Runner.DatabaseName: the one of databases when it names one, none when it
// names several, and otherwise the connection's, resolved with the
// connection Secret's values when opts can read them.
func DatabaseName(databases []string, conn v1.DatabaseConnection, opts Options) string {
	switch len(databases) {
	case 0:
	case 1:
		return databases[0]
	default:
		return ""
	}
	if opts.Getenv == nil {
		return conn.Database
	}
	resolved, err := ResolveConnection(conn, opts.Namespace, 1, opts.Getenv)
	if err != nil {
		return conn.Database
	}
	return resolved.Database
}

// DescribeConnection says which database a connection names and where, for
// the engines' descriptions.
func DescribeConnection(c v1.DatabaseConnection) string {
	where := c.Host
	if c.ServiceRef != nil {
		where = "service " + c.ServiceRef.Name
	}
	if where == "" {
		where = "from Secret " + c.SecretRef.Name
	}
	if c.Database != "" {
		return fmt.Sprintf("database %s on %s", c.Database, where)
	}
	return "on " + where
}

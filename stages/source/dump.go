package source

import (
	"context"
	"io"
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

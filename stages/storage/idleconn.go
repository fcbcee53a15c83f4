package storage

import (
	"context"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// errIdle says that a connection to the store moved no byte for its idle
// timeout: the server accepted and stopped answering, or stopped reading a
// body half-way.
var errIdle = errors.New("the storage connection stalled: no byte moved within the idle timeout")

// idleConn fails a read or write that moves nothing for idle, and never one
// that keeps moving, however slowly: every read and write pushes the deadline
// of both directions forward, so that the transport's read of a response,
// pending while a long request body goes out, is kept alive by the writes.
type idleConn struct {
	net.Conn
	idle time.Duration
	// extended is when the deadline was last pushed (UnixNano); pushing it on
	// every call of a fast stream would cost more than it buys.
	extended atomic.Int64
}

// idleChunk bounds one write, so that a slow link still shows progress to
// the deadline between the pieces of a large body.
const idleChunk = 256 << 10

func (c *idleConn) extend() {
	now := time.Now()
	if last := c.extended.Load(); now.UnixNano()-last < int64(c.idle/8) {
		return
	}
	c.extended.Store(now.UnixNano())
	_ = c.Conn.SetDeadline(now.Add(c.idle))
}

func (c *idleConn) Read(p []byte) (int, error) {
	c.extend()
	n, err := c.Conn.Read(p)
	return n, c.stalled(err)
}

func (c *idleConn) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > idleChunk {
			chunk = chunk[:idleChunk]
		}
		c.extend()
		n, err := c.Conn.Write(chunk)
		written += n
		if err != nil {
			return written, c.stalled(err)
		}
		p = p[n:]
	}
	return written, nil
}

func (c *idleConn) stalled(err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &net.OpError{Op: "idle", Net: "tcp", Addr: c.RemoteAddr(), Err: errIdle}
	}
	return err
}

// idleDialer wraps dial so that every connection it makes is an idleConn.
func idleDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &idleConn{Conn: conn, idle: idle}
		c.extend()
		return c, nil
	}
}

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
// pending while a long request body goes out, is kept alive by the writes;
// and a deadline that passes while the peer still acknowledges bytes that
// were written earlier (and sat in the kernel's buffers, megabytes on a slow
// link) is pushed again.
type idleConn struct {
	net.Conn
	idle time.Duration
	// extended is when the deadline was last pushed (UnixNano); pushing it on
	// every call of a fast stream would cost more than it buys.
	extended atomic.Int64
	// acked is what the peer had acknowledged at the last deadline.
	acked atomic.Uint64
}

// idleChunk bounds one write, so that a slow link still shows progress to
// the deadline between the pieces of a large body.
const idleChunk = 256 << 10

func (c *idleConn) extend() {
	now := time.Now()
	if last := c.extended.Load(); last != 0 && now.UnixNano()-last < int64(c.idle/8) {
		return
	}
	c.extended.Store(now.UnixNano())
	_ = c.Conn.SetDeadline(now.Add(c.idle))
}

func (c *idleConn) Read(p []byte) (int, error) {
	for {
		c.extend()
		n, err := c.Conn.Read(p)
		if n == 0 && c.moving(err) {
			continue
		}
		return n, c.stalled(err)
	}
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
		p = p[n:]
		if err != nil && !c.moving(err) {
			return written, c.stalled(err)
		}
	}
	return written, nil
}

// moving says whether err is a deadline that passed while the peer kept
// acknowledging what was sent; if so the deadline is pushed again.
func (c *idleConn) moving(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	acked, ok := bytesAcked(c.Conn)
	if !ok || acked == c.acked.Swap(acked) {
		return false
	}
	c.extended.Store(0)
	return true
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

package pipeline

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Algorithm names a compression algorithm, as in the Backup spec.
type Algorithm string

const (
	Zstd Algorithm = "zstd"
	Gzip Algorithm = "gzip"
	None Algorithm = "none"
)

// DefaultLevel is the level an algorithm uses when none is given. For zstd it
// is 1, the fastest of the Go encoder: on pg_dump output its frames come out
// as small as the zstd tool's default level 3 (223 MB against 235 MB for a
// 1.08 GB dump) for the CPU time that level costs the C tool, and a backup
// competes for the same cores as the database it dumps.
func DefaultLevel(a Algorithm) int {
	switch a {
	case Zstd:
		return 1
	case Gzip:
		return 6
	default:
		return 0
	}
}

// Extension is the file name suffix for data compressed with a.
func (a Algorithm) Extension() string {
	switch a {
	case Zstd:
		return ".zst"
	case Gzip:
		return ".gz"
	default:
		return ""
	}
}

// ParseAlgorithm checks an algorithm name and its level, and returns the level
// to use (the default when level is 0).
func ParseAlgorithm(name string, level int) (Algorithm, int, error) {
	a := Algorithm(name)
	if a == "" {
		a = Zstd
	}
	var lo, hi int
	switch a {
	case Zstd:
		lo, hi = 1, 22
	case Gzip:
		lo, hi = 1, 9
	case None:
		if level != 0 {
			return "", 0, fmt.Errorf("compression level %d given for algorithm none", level)
		}
		return a, 0, nil
	default:
		return "", 0, fmt.Errorf("unknown compression algorithm %q: use zstd, gzip or none", name)
	}
	if level == 0 {
		return a, DefaultLevel(a), nil
	}
	if level < lo || level > hi {
		return "", 0, fmt.Errorf("compression level %d out of range %d-%d for %s", level, lo, hi, a)
	}
	return a, level, nil
}

// zstdChunkSize is the amount of input each zstd frame holds. Frames are
// compressed independently on all cores and written in order; a stream of
// frames is an ordinary zstd stream to every decoder.
const zstdChunkSize = 2 << 20

// NewCompressor returns a writer that compresses into w. Close flushes it; it
// does not close w.
func NewCompressor(w io.Writer, a Algorithm, level int) (io.WriteCloser, error) {
	switch a {
	case Zstd:
		return newParallelZstdWriter(w, level, runtime.GOMAXPROCS(0))
	case Gzip:
		gz, err := pgzip.NewWriterLevel(w, level)
		if err != nil {
			return nil, err
		}
		// 1 MiB blocks, two per core in flight: bounded memory, all cores busy.
		if err := gz.SetConcurrency(1<<20, 2*runtime.GOMAXPROCS(0)); err != nil {
			return nil, err
		}
		return gz, nil
	case None:
		return nopWriteCloser{w}, nil
	default:
		return nil, fmt.Errorf("unknown compression algorithm %q", a)
	}
}

// NewDecompressor returns a reader of the data that r holds compressed.
func NewDecompressor(r io.Reader, a Algorithm) (io.ReadCloser, error) {
	switch a {
	case Zstd:
		return newParallelZstdReader(r, runtime.GOMAXPROCS(0)), nil
	case Gzip:
		return pgzip.NewReaderN(r, 1<<20, 4)
	case None:
		return io.NopCloser(r), nil
	default:
		return nil, fmt.Errorf("unknown compression algorithm %q", a)
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// parallelZstdWriter cuts its input into chunks, compresses each into a zstd
// frame on a pool of goroutines, and writes the frames in input order.
// klauspost's streaming encoder barely uses a second core; independent frames
// use them all.
type parallelZstdWriter struct {
	w      io.Writer
	enc    *zstd.Encoder
	buf    []byte
	frames chan *zstdFrame
	done   chan struct{}
	err    error // first write error, set by the writer goroutine before done closes
	mu     sync.Mutex
	pool   sync.Pool
	closed bool
}

type zstdFrame struct {
	in    []byte
	out   []byte
	ready chan struct{}
}

func newParallelZstdWriter(w io.Writer, level, workers int) (*parallelZstdWriter, error) {
	if workers < 1 {
		workers = 1
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
		zstd.WithEncoderConcurrency(workers),
		// A frame never refers back past its own chunk: a larger window
		// only costs memory.
		zstd.WithWindowSize(zstdChunkSize),
		zstd.WithLowerEncoderMem(true),
		// No xxhash per frame (4% of the dump's CPU): the checksum of the
		// plain stream, checked by verify and restore, already covers it.
		zstd.WithEncoderCRC(false))
	if err != nil {
		return nil, err
	}
	z := &parallelZstdWriter{
		w:      w,
		enc:    enc,
		frames: make(chan *zstdFrame, workers),
		done:   make(chan struct{}),
	}
	z.pool.New = func() any { b := make([]byte, 0, zstdChunkSize); return &b }
	z.buf = z.getBuffer()
	go z.writeFrames()
	return z, nil
}

// getBuffer and putBuffer recycle chunk buffers, so memory stays at the
// chunks in flight whatever the stream's length.
func (z *parallelZstdWriter) getBuffer() []byte { return (*z.pool.Get().(*[]byte))[:0] }

func (z *parallelZstdWriter) putBuffer(b []byte) {
	b = b[:0]
	z.pool.Put(&b)
}

// writeFrames writes the frames in order as they become ready.
func (z *parallelZstdWriter) writeFrames() {
	defer close(z.done)
	for f := range z.frames {
		<-f.ready
		if z.failed() == nil {
			if _, err := z.w.Write(f.out); err != nil {
				z.fail(err)
			}
		}
		z.putBuffer(f.in)
		z.putBuffer(f.out)
	}
}

func (z *parallelZstdWriter) fail(err error) {
	z.mu.Lock()
	if z.err == nil {
		z.err = err
	}
	z.mu.Unlock()
}

func (z *parallelZstdWriter) failed() error {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.err
}

// flushChunk hands the current chunk to a compressing goroutine. The frames
// channel's capacity bounds the chunks in flight, and so the memory used.
func (z *parallelZstdWriter) flushChunk() {
	if len(z.buf) == 0 {
		return
	}
	f := &zstdFrame{in: z.buf, out: z.getBuffer(), ready: make(chan struct{})}
	z.buf = z.getBuffer()
	z.frames <- f
	go func() {
		f.out = z.enc.EncodeAll(f.in, f.out[:0])
		close(f.ready)
	}()
}

func (z *parallelZstdWriter) Write(p []byte) (int, error) {
	if z.closed {
		return 0, fmt.Errorf("zstd: write after close")
	}
	n := 0
	for len(p) > 0 {
		if err := z.failed(); err != nil {
			return n, err
		}
		room := zstdChunkSize - len(z.buf)
		if room > len(p) {
			room = len(p)
		}
		z.buf = append(z.buf, p[:room]...)
		p = p[room:]
		n += room
		if len(z.buf) == zstdChunkSize {
			z.flushChunk()
		}
	}
	return n, nil
}

// ReadFrom reads r to its end straight into the chunks, without the copy
// from io.Copy's buffer that Write makes: io.Copy takes this path.
func (z *parallelZstdWriter) ReadFrom(r io.Reader) (int64, error) {
	if z.closed {
		return 0, fmt.Errorf("zstd: write after close")
	}
	var total int64
	for {
		if err := z.failed(); err != nil {
			return total, err
		}
		n, err := r.Read(z.buf[len(z.buf):zstdChunkSize])
		z.buf = z.buf[:len(z.buf)+n]
		total += int64(n)
		if len(z.buf) == zstdChunkSize {
			z.flushChunk()
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close compresses what is left and waits until every frame is written.
func (z *parallelZstdWriter) Close() error {
	if z.closed {
		return z.failed()
	}
	z.closed = true
	z.flushChunk()
	close(z.frames)
	<-z.done
	return z.failed()
}

package pipeline

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// maxParallelFrame is the largest zstd frame, compressed or decoded, that
// the parallel reader decodes on its own: the dump's frames hold
// zstdChunkSize bytes each. A frame that is larger or does not say its size
// (another tool's stream) goes to the streaming decoder, with everything
// after it.
const maxParallelFrame = 4 * zstdChunkSize

// parallelZstdReader decodes a stream of zstd frames on all cores. The frames
// of parallelZstdWriter are independent and say their decoded size, so each
// is decoded on its own (a single-threaded decoder would be restore's
// bottleneck) and written in input order. At most `workers` frames are in
// flight, which bounds memory whatever the stream's length. Any other zstd
// stream still decodes: from its first frame that does not fit, the rest goes
// through klauspost's streaming decoder.
type parallelZstdReader struct {
	frames chan *zstdDecodedFrame
	quit   chan struct{}
	once   sync.Once
	pool   sync.Pool
	// stream decodes the rest of the input once the splitter handed it over.
	stream *zstd.Decoder
	// cur is the frame being read, rest its bytes not read yet.
	cur  *zstdDecodedFrame
	rest []byte
	err  error
}

// zstdDecodedFrame is one frame in input order: its decoded bytes once ready
// closes, or the rest of the input for the streaming decoder.
type zstdDecodedFrame struct {
	in, out []byte
	err     error
	ready   chan struct{}
	// rest, when set, is the input from this frame on, for the streaming
	// decoder; the frame itself carries no bytes.
	rest io.Reader
}

// allAtOnce decodes whole frames; it is safe for concurrent use and starts no
// goroutine of its own.
var allAtOnce, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxParallelFrame))

func newParallelZstdReader(r io.Reader, workers int) *parallelZstdReader {
	z := &parallelZstdReader{frames: make(chan *zstdDecodedFrame, max(workers, 1)), quit: make(chan struct{})}
	z.pool.New = func() any { b := make([]byte, 0, zstdChunkSize); return &b }
	go z.split(bufio.NewReaderSize(r, 256<<10))
	return z
}

func (z *parallelZstdReader) getBuffer() []byte { return (*z.pool.Get().(*[]byte))[:0] }

func (z *parallelZstdReader) putBuffer(b []byte) {
	if cap(b) > 0 && cap(b) <= maxParallelFrame {
		b = b[:0]
		z.pool.Put(&b)
	}
}

// send queues f, unless the reader was closed.
func (z *parallelZstdReader) send(f *zstdDecodedFrame) bool {
	select {
	case z.frames <- f:
		return true
	case <-z.quit:
		return false
	}
}

// split cuts the input into frames and decodes each on a goroutine of its
// own; the frames channel's capacity bounds the frames in flight.
func (z *parallelZstdReader) split(br *bufio.Reader) {
	defer close(z.frames)
	for {
		in, err := readZstdFrame(br, z.getBuffer())
		switch {
		case err == io.EOF:
			return
		case errors.Is(err, errFrameTooLarge):
			// The frame read so far and the rest of the input decode as a
			// stream. This reader never reads br again.
			z.send(&zstdDecodedFrame{rest: io.MultiReader(bytes.NewReader(in), br)})
			return
		case err != nil:
			f := &zstdDecodedFrame{err: err, ready: make(chan struct{})}
			close(f.ready)
			z.send(f)
			return
		}
		f := &zstdDecodedFrame{in: in, ready: make(chan struct{})}
		if !z.send(f) {
			return
		}
		go func() {
			f.out, f.err = allAtOnce.DecodeAll(f.in, z.getBuffer())
			close(f.ready)
		}()
	}
}

var errFrameTooLarge = errors.New("zstd frame too large to decode on its own")

// readZstdFrame appends the next whole frame of br to buf, without decoding
// it: the frame header, then block headers, which say how many bytes follow
// each. It returns errFrameTooLarge, with what it read, for a frame that
// does not say its decoded size or that is larger than maxParallelFrame (or
// asks for a larger window), and
// io.EOF at the end of the input.
func readZstdFrame(br *bufio.Reader, buf []byte) ([]byte, error) {
	head, err := br.Peek(zstd.HeaderMaxSize)
	if len(head) == 0 {
		if err == nil || err == io.EOF {
			return buf, io.EOF
		}
		return buf, err
	}
	var h zstd.Header
	if err := h.Decode(head); err != nil {
		return buf, fmt.Errorf("reading a zstd frame header: %w", err)
	}
	if h.Skippable {
		// Skippable frames carry no data: skip them as any decoder does.
		if _, err := br.Discard(h.HeaderSize + int(h.SkippableSize)); err != nil {
			return buf, unexpected(err)
		}
		return readZstdFrame(br, buf)
	}
	take := func(n int) error {
		if len(buf)+n > maxParallelFrame {
			return errFrameTooLarge
		}
		start := len(buf)
		buf = slices.Grow(buf, n)[:start+n]
		_, err := io.ReadFull(br, buf[start:])
		return unexpected(err)
	}
	if !h.HasFCS || h.FrameContentSize > maxParallelFrame || (!h.SingleSegment && h.WindowSize > maxParallelFrame) {
		// allAtOnce refuses a window larger than its memory, whatever the
		// content's size.
		return buf, errFrameTooLarge
	}
	if err := take(h.HeaderSize); err != nil {
		return buf, err
	}
	for last := false; !last; {
		if err := take(3); err != nil {
			return buf, err
		}
		block := buf[len(buf)-3:]
		header := uint32(block[0]) | uint32(block[1])<<8 | uint32(block[2])<<16
		last = header&1 != 0
		size := int(header >> 3)
		if blockType := (header >> 1) & 3; blockType == 1 {
			size = 1 // RLE: one byte, repeated size times
		}
		if err := take(size); err != nil {
			return buf, err
		}
	}
	if h.HasCheckSum {
		if err := take(4); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// unexpected turns the end of the input inside a frame into an error.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// next makes the next frame current: false at the end or on an error.
func (z *parallelZstdReader) next() bool {
	if z.err != nil {
		return false
	}
	if z.cur != nil {
		z.putBuffer(z.cur.in)
		z.putBuffer(z.cur.out)
		z.cur, z.rest = nil, nil
	}
	f, ok := <-z.frames
	if !ok {
		z.err = io.EOF
		return false
	}
	if f.rest != nil {
		z.stream, z.err = zstd.NewReader(f.rest, zstd.WithDecoderConcurrency(0), zstd.WithDecoderLowmem(false))
		return false
	}
	<-f.ready
	if f.err != nil {
		z.err = fmt.Errorf("decoding a zstd frame: %w", f.err)
		return false
	}
	z.cur, z.rest = f, f.out
	return true
}

func (z *parallelZstdReader) Read(p []byte) (int, error) {
	for len(z.rest) == 0 {
		if z.stream != nil {
			return z.stream.Read(p)
		}
		if !z.next() && z.stream == nil {
			return 0, z.err
		}
	}
	n := copy(p, z.rest)
	z.rest = z.rest[n:]
	return n, nil
}

// WriteTo writes each decoded frame as it is, without a copy: io.Copy takes
// this path.
func (z *parallelZstdReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(z.rest) > 0 {
			n, err := w.Write(z.rest)
			total += int64(n)
			z.rest = z.rest[n:]
			if err != nil {
				return total, err
			}
		}
		if z.stream != nil {
			n, err := z.stream.WriteTo(w)
			return total + n, err
		}
		if !z.next() && z.stream == nil {
			if z.err == io.EOF {
				return total, nil
			}
			return total, z.err
		}
	}
}

// Close stops the splitter; frames in flight finish on their own.
func (z *parallelZstdReader) Close() error {
	z.once.Do(func() {
		close(z.quit)
		if z.stream != nil {
			z.stream.Close()
		}
	})
	return nil
}

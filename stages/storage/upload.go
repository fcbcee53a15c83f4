package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// uploadLimits are the limits of S3 that shape an upload. Tests make them
// tiny to run the multi-segment path on a real server.
type uploadLimits struct {
	// partSize is the size of every uploaded part but the last one: the
	// buffer that memory is made of.
	partSize int64
	// maxParts is the largest part number of a multipart upload.
	maxParts int
	// maxCopyPart is the largest part copied from an object on the server.
	maxCopyPart int64
	// maxObject is the largest object.
	maxObject int64
}

// s3Limits are Amazon S3's, which MinIO and the others repeat.
func s3Limits(partSize int64) uploadLimits {
	return uploadLimits{partSize: partSize, maxParts: 10_000, maxCopyPart: 5 << 30, maxObject: 5 << 40}
}

// segmentSize is the largest segment: one multipart upload of full parts.
func (l uploadLimits) segmentSize() int64 { return int64(l.maxParts) * l.partSize }

// copyParts is how many parts a segment of size bytes is copied as.
func (l uploadLimits) copyParts(size int64) int {
	return int((size + l.maxCopyPart - 1) / l.maxCopyPart)
}

// directParts is how many parts of the stream go straight into the final
// upload before the rest goes through segments: as many as leave enough part
// numbers to copy in the segments of an object of maxObject bytes. A stream
// that fits is uploaded exactly as a plain multipart upload; 8,976 parts of
// 16 MiB (140 GiB) with S3's limits.
func (l uploadLimits) directParts() (int, error) {
	for d := l.maxParts; d >= 0; d-- {
		rest := l.maxObject - int64(d)*l.partSize
		if rest <= 0 {
			return d, nil
		}
		segments := (rest + l.segmentSize() - 1) / l.segmentSize()
		if int64(d)+segments*int64(l.copyParts(l.segmentSize())) <= int64(l.maxParts) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("upload limits cannot hold an object of %d bytes", l.maxObject)
}

// objectOptions are what an object is created with.
type objectOptions struct {
	metadata map[string]string
	// ifAbsent makes the completion conditional (If-None-Match: *), so that
	// an object that exists by then is never replaced.
	ifAbsent bool
}

// partStore is what an upload asks of an S3 store, with full keys: the S3
// backend implements it with minio-go's Core, and a test counts parts and
// bytes of a simulated 5 TiB stream with it.
type partStore interface {
	putObject(ctx context.Context, key string, data []byte, opts objectOptions) error
	createUpload(ctx context.Context, key string, opts objectOptions) (uploadID string, err error)
	uploadPart(ctx context.Context, key, uploadID string, number int, data []byte) (minio.CompletePart, error)
	copyPart(ctx context.Context, srcKey, key, uploadID string, number int, offset, length int64) (minio.CompletePart, error)
	completeUpload(ctx context.Context, key, uploadID string, parts []minio.CompletePart, opts objectOptions) error
	abortUpload(ctx context.Context, key, uploadID string) error
	removeObject(ctx context.Context, key string) error
}

// segmentMarker is in the name of every segment object, which is never a
// backup: it has no manifest, its name starts with a dot, and the upload that
// made it deletes it, on success and failure.
const segmentMarker = ".backflow-segment-"

// IsSegmentKey says whether key names a temporary segment of an upload
// larger than one multipart upload holds.
func IsSegmentKey(key string) bool {
	base := path.Base(key)
	return strings.HasPrefix(base, ".") && strings.Contains(base, segmentMarker)
}

// segmentKey names segment n of the upload uploadID of key, beside key so
// that the same permissions cover it.
func segmentKey(key, uploadID string, n int) string {
	dir, base := path.Split(key)
	id := uploadID
	if len(id) > 16 {
		id = id[len(id)-16:]
	}
	return dir + "." + base + segmentMarker + sanitizeID(id) + "-" + strconv.Itoa(n)
}

func sanitizeID(id string) string {
	out := []byte(id)
	for i, c := range out {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			out[i] = '_'
		}
	}
	return string(out)
}

// ErrTooLarge says that a stream is larger than the largest object.
var ErrTooLarge = errors.New("the stream is larger than the largest object S3 stores")

// uploader streams a reader of unknown length into one object with flat
// memory: threads buffers of partSize, whatever the size.
//
// A stream of up to directParts parts is one multipart upload to the key, as
// any S3 client makes it (one PUT when it fits in a part). Beyond that, the
// part numbers left would not reach 5 TiB with parts that fit in memory, so
// the rest of the stream is uploaded as segments (each an object of up to
// maxParts parts beside the key) that the server copies into the key's
// upload in parts of up to maxCopyPart, and that are deleted right after.
// Only the bytes beyond directParts are copied, on the server, while the next
// segment uploads.
type uploader struct {
	store   partStore
	limits  uploadLimits
	threads int
	// cleanupTimeout bounds the abort and deletes after a failure.
	cleanupTimeout time.Duration
}

func (u *uploader) upload(ctx context.Context, key string, r io.Reader, opts objectOptions) (err error) {
	direct, err := u.limits.directParts()
	if err != nil {
		return err
	}
	pool := newBufferPool(u.threads, int(u.limits.partSize))
	first := pool.get()
	n, done, err := fill(r, first)
	if err != nil {
		return err
	}
	if done {
		return u.store.putObject(ctx, key, first[:n], opts)
	}
	second := pool.get()
	m, done, err := fill(r, second)
	if err != nil {
		return err
	}
	if m == 0 && done {
		return u.store.putObject(ctx, key, first[:n], opts)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	final, err := u.start(ctx, key, objectOptions{metadata: opts.metadata})
	if err != nil {
		return err
	}
	var (
		segment    *multipart
		segments   []string // completed segment objects not deleted yet
		segMu      sync.Mutex
		copying    chan error // the copy of the previous segment
		copyErr    error
		segmentNum int
	)
	defer func() {
		if err == nil {
			return
		}
		cancel()
		if copying != nil {
			<-copying
		}
		final.abort()
		if segment != nil {
			segment.abort()
		}
		segMu.Lock()
		defer segMu.Unlock()
		for _, k := range segments {
			_ = retryCleanup(u.cleanupTimeout, func(ctx context.Context) error { return u.store.removeObject(ctx, k) })
		}
	}()
	waitCopy := func() error {
		if copying != nil {
			copyErr = <-copying
			copying = nil
		}
		return copyErr
	}
	// finishSegment completes the segment and copies it into final in the
	// background, reserving its part numbers now.
	finishSegment := func(s *multipart) error {
		size, err := s.complete(objectOptions{})
		if err != nil {
			return err
		}
		segMu.Lock()
		segments = append(segments, s.key)
		segMu.Unlock()
		if err := waitCopy(); err != nil {
			return err
		}
		if final.count()+u.limits.copyParts(size) > u.limits.maxParts {
			return fmt.Errorf("%w: no part number left to copy a segment into", ErrTooLarge)
		}
		first := final.reserve(u.limits.copyParts(size))
		copying = make(chan error, 1)
		go func() {
			err := final.copyFrom(s.key, size, first, u.limits)
			if err == nil {
				if err = u.store.removeObject(ctx, s.key); err == nil {
					segMu.Lock()
					segments = remove(segments, s.key)
					segMu.Unlock()
				}
			}
			copying <- err
		}()
		return nil
	}

	type chunk struct {
		buf []byte
		n   int
	}
	queue := []chunk{{first, n}, {second, m}}
	var total int64
	for {
		var c chunk
		if len(queue) > 0 {
			c, queue = queue[0], queue[1:]
		} else if !done {
			c.buf = pool.get()
			if c.n, done, err = fill(r, c.buf); err != nil {
				pool.put(c.buf)
				return err
			}
		} else {
			break
		}
		if c.n == 0 {
			pool.put(c.buf)
			break
		}
		total += int64(c.n)
		if total > u.limits.maxObject {
			pool.put(c.buf)
			return fmt.Errorf("%w (%d bytes): compress the dump harder or split it", ErrTooLarge, u.limits.maxObject)
		}
		if segment == nil && final.count() < direct {
			if err := final.add(c.buf, c.n, pool); err != nil {
				return err
			}
			continue
		}
		if segment != nil && segment.count() == u.limits.maxParts {
			if err := finishSegment(segment); err != nil {
				pool.put(c.buf)
				return err
			}
			segment = nil
		}
		if segment == nil {
			segmentNum++
			// A segment carries the object's metadata: should the step be killed
			// before it deletes it, rotate's orphan rule can prove whose it is.
			if segment, err = u.start(ctx, segmentKey(key, final.uploadID, segmentNum), objectOptions{metadata: opts.metadata}); err != nil {
				pool.put(c.buf)
				return err
			}
		}
		if err := segment.add(c.buf, c.n, pool); err != nil {
			return err
		}
	}
	if segment != nil {
		if err := finishSegment(segment); err != nil {
			return err
		}
		segment = nil
	}
	if err := waitCopy(); err != nil {
		return err
	}
	_, err = final.complete(objectOptions{ifAbsent: opts.ifAbsent})
	return err
}

func remove(keys []string, key string) []string {
	out := keys[:0]
	for _, k := range keys {
		if k != key {
			out = append(out, k)
		}
	}
	return out
}

func (u *uploader) start(ctx context.Context, key string, opts objectOptions) (*multipart, error) {
	id, err := u.store.createUpload(ctx, key, opts)
	if err != nil {
		return nil, err
	}
	return &multipart{ctx: ctx, store: u.store, key: key, uploadID: id, cleanupTimeout: u.cleanupTimeout}, nil
}

// fill reads r into buf until buf is full or r ends; done says it ended.
func fill(r io.Reader, buf []byte) (n int, done bool, err error) {
	n, err = io.ReadFull(r, buf)
	switch {
	case err == nil:
		return n, false, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return n, true, nil
	}
	return n, false, err
}

// bufferPool hands out at most size buffers, made when first needed.
type bufferPool struct {
	free      chan []byte
	made, max int
	size      int
}

func newBufferPool(max, size int) *bufferPool {
	return &bufferPool{free: make(chan []byte, max), max: max, size: size}
}

func (p *bufferPool) get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
	}
	if p.made < p.max {
		p.made++
		return make([]byte, p.size)
	}
	return <-p.free
}

func (p *bufferPool) put(b []byte) { p.free <- b[:cap(b)] }

// multipart is one multipart upload, its parts uploaded in the background.
type multipart struct {
	ctx      context.Context
	store    partStore
	key      string
	uploadID string
	// cleanupTimeout bounds the abort.
	cleanupTimeout time.Duration

	wg    sync.WaitGroup
	mu    sync.Mutex
	err   error // the first part that failed
	parts []partETag
	next  int   // the last part number handed out
	size  int64 // bytes in parts
}

func (m *multipart) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.next
}

// reserve hands out n part numbers and returns the first.
func (m *multipart) reserve(n int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	first := m.next + 1
	m.next += n
	return first
}

// failed is the first error of a part, if one failed.
func (m *multipart) failed() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// add uploads buf[:n] as the next part in the background and gives buf back
// to pool when done.
func (m *multipart) add(buf []byte, n int, pool *bufferPool) error {
	if err := m.failed(); err != nil {
		pool.put(buf)
		return err
	}
	number := m.reserve(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer pool.put(buf)
		part, err := m.store.uploadPart(m.ctx, m.key, m.uploadID, number, buf[:n])
		m.record(part, int64(n), err)
	}()
	return nil
}

func (m *multipart) record(part minio.CompletePart, size int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if m.err == nil {
			m.err = err
		}
		return
	}
	m.parts = append(m.parts, partETag{part.PartNumber, part.ETag})
	m.size += size
}

// partETag is what a completion needs of a part: a CompletePart is ten
// times larger, for checksums that uploads do not send.
type partETag struct {
	number int
	etag   string
}

// copyFrom copies the object src of size bytes into parts first, first+1, ...
// of even size, each at most limits.maxCopyPart.
func (m *multipart) copyFrom(src string, size int64, first int, limits uploadLimits) error {
	n := int64(limits.copyParts(size))
	for i := int64(0); i < n; i++ {
		start, end := size*i/n, size*(i+1)/n
		part, err := m.store.copyPart(m.ctx, src, m.key, m.uploadID, first+int(i), start, end-start)
		m.record(part, end-start, err)
		if err != nil {
			return err
		}
	}
	return nil
}

// complete waits for the parts and completes the upload; it returns the
// object's size.
func (m *multipart) complete(opts objectOptions) (int64, error) {
	m.wg.Wait()
	if err := m.failed(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	parts := make([]minio.CompletePart, len(m.parts))
	for i, p := range m.parts {
		parts[i] = minio.CompletePart{PartNumber: p.number, ETag: p.etag}
	}
	size := m.size
	m.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber })
	if err := m.store.completeUpload(m.ctx, m.key, m.uploadID, parts, opts); err != nil {
		return 0, err
	}
	m.uploadID = "" // nothing left to abort
	return size, nil
}

// abort waits for the parts in flight and aborts the upload, with a context
// of its own: the upload's may be cancelled already.
func (m *multipart) abort() {
	m.wg.Wait()
	if m.uploadID == "" {
		return
	}
	_ = retryCleanup(m.cleanupTimeout, func(ctx context.Context) error { return m.store.abortUpload(ctx, m.key, m.uploadID) })
}

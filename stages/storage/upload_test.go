package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// minPartSize is S3's smallest part, but for the last one.
const minPartSize = 5 << 20

// countingStore is a partStore that checks every request against S3's limits
// and counts parts and bytes, keeping the bytes only when keep is set: the
// uploader's logic alone, without moving 5 TiB.
type countingStore struct {
	limits uploadLimits
	keep   bool

	mu         sync.Mutex
	next       int
	uploads    map[string]*countedUpload // by upload ID
	objects    map[string]countedObject
	violations []string
	inFlight   int
	peakFlight int
	partsSent  int
	bytesSent  int64
	copied     int64
	// failAfter fails the part upload of this number of bytes sent, once.
	failAfter int64
}

type countedUpload struct {
	key   string
	parts map[int]countedObject
	copy  map[int]bool
}

type countedObject struct {
	size int64
	data []byte
}

func newCountingStore(limits uploadLimits, keep bool) *countingStore {
	return &countingStore{limits: limits, keep: keep, uploads: map[string]*countedUpload{}, objects: map[string]countedObject{}}
}

func (s *countingStore) violate(format string, args ...any) {
	s.violations = append(s.violations, fmt.Sprintf(format, args...))
}

func (s *countingStore) putObject(_ context.Context, key string, data []byte, opts objectOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.objects[key]; ok && opts.ifAbsent {
		return ErrExists
	}
	s.objects[key] = s.object(data)
	s.bytesSent += int64(len(data))
	return nil
}

func (s *countingStore) object(data []byte) countedObject {
	o := countedObject{size: int64(len(data))}
	if s.keep {
		o.data = append([]byte(nil), data...)
	}
	return o
}

func (s *countingStore) createUpload(_ context.Context, key string, _ objectOptions) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	id := "upload-" + strconv.Itoa(s.next)
	s.uploads[id] = &countedUpload{key: key, parts: map[int]countedObject{}, copy: map[int]bool{}}
	return id, nil
}

func (s *countingStore) uploadPart(_ context.Context, key, uploadID string, number int, data []byte) (minio.CompletePart, error) {
	s.mu.Lock()
	s.inFlight++
	s.peakFlight = max(s.peakFlight, s.inFlight)
	s.mu.Unlock()
	runtime.Gosched() // let the other parts in flight overlap this one
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { s.inFlight-- }()
	u := s.uploads[uploadID]
	if u == nil || u.key != key {
		return minio.CompletePart{}, fmt.Errorf("no upload %s of %s", uploadID, key)
	}
	if number < 1 || number > s.limits.maxParts {
		s.violate("part number %d outside 1..%d", number, s.limits.maxParts)
	}
	if int64(len(data)) > s.limits.partSize {
		s.violate("part %d of %d bytes is larger than the buffer of %d", number, len(data), s.limits.partSize)
	}
	if s.failAfter > 0 && s.bytesSent >= s.failAfter {
		s.failAfter = 0
		return minio.CompletePart{}, transientError{errors.New("connection reset by the test")}
	}
	u.parts[number] = s.object(data)
	s.partsSent++
	s.bytesSent += int64(len(data))
	return minio.CompletePart{PartNumber: number, ETag: "etag"}, nil
}

func (s *countingStore) copyPart(_ context.Context, src, key, uploadID string, number int, offset, length int64) (minio.CompletePart, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, obj := s.uploads[uploadID], s.objects[src]
	if u == nil || u.key != key {
		return minio.CompletePart{}, fmt.Errorf("no upload %s of %s", uploadID, key)
	}
	if !IsSegmentKey(src) {
		s.violate("copy source %s is not named as a segment", src)
	}
	if length > s.limits.maxCopyPart || offset < 0 || offset+length > obj.size {
		s.violate("copy part %d: %d bytes at %d of %s (%d bytes)", number, length, offset, src, obj.size)
	}
	if number < 1 || number > s.limits.maxParts {
		s.violate("part number %d outside 1..%d", number, s.limits.maxParts)
	}
	part := countedObject{size: length}
	if s.keep {
		part.data = obj.data[offset : offset+length]
	}
	u.parts[number], u.copy[number] = part, true
	s.copied += length
	return minio.CompletePart{PartNumber: number, ETag: "etag"}, nil
}

func (s *countingStore) completeUpload(_ context.Context, key, uploadID string, parts []minio.CompletePart, opts objectOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.uploads[uploadID]
	if u == nil || u.key != key {
		return fmt.Errorf("no upload %s of %s", uploadID, key)
	}
	if len(parts) > s.limits.maxParts || len(parts) != len(u.parts) {
		s.violate("%s completed with %d parts of %d uploaded", key, len(parts), len(u.parts))
	}
	if !sort.SliceIsSorted(parts, func(i, j int) bool { return parts[i].PartNumber < parts[j].PartNumber }) {
		s.violate("%s: parts not in ascending order", key)
	}
	var obj countedObject
	for i, p := range parts {
		part := u.parts[p.PartNumber]
		if i < len(parts)-1 && part.size < minPartSize {
			s.violate("%s: part %d of %d bytes is not the last one and smaller than 5 MiB", key, p.PartNumber, part.size)
		}
		obj.size += part.size
		if s.keep {
			obj.data = append(obj.data, part.data...)
		}
	}
	if _, ok := s.objects[key]; ok && opts.ifAbsent {
		return ErrExists
	}
	s.objects[key] = obj
	delete(s.uploads, uploadID)
	return nil
}

func (s *countingStore) abortUpload(_ context.Context, _, uploadID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.uploads, uploadID)
	return nil
}

func (s *countingStore) removeObject(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.objects, key)
	return nil
}

// check fails the test for every violation, for an unfinished upload, and for
// any object but want.
func (s *countingStore) check(t *testing.T, want ...string) {
	t.Helper()
	for _, v := range s.violations {
		t.Error(v)
	}
	for id, u := range s.uploads {
		t.Errorf("upload %s of %s left unfinished", id, u.key)
	}
	var keys []string
	for k := range s.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Errorf("objects %v, want %v", keys, want)
	}
}

// zeroReader is a stream of size bytes that are never written: a 5 TiB
// stream read in no time.
type zeroReader struct{ left int64 }

func (r *zeroReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.left))
	r.left -= int64(n)
	return n, nil
}

func TestDirectPartsWithS3Limits(t *testing.T) {
	l := s3Limits(16 << 20)
	d, err := l.directParts()
	if err != nil {
		t.Fatal(err)
	}
	// 8,976 parts of 16 MiB go straight to the key; 1,024 part numbers are
	// left for 32 segments of 156.25 GiB copied in 32 parts each.
	if d != 8976 {
		t.Errorf("directParts = %d, want 8976", d)
	}
	if l.copyParts(l.segmentSize()) != 32 {
		t.Errorf("a full segment copies in %d parts, want 32", l.copyParts(l.segmentSize()))
	}
}

// A 5 TiB stream with the default settings: every upload within S3's limits,
// every byte accounted for, two part buffers in memory.
func TestUpload5TiBWithDefaultLimits(t *testing.T) {
	limits := s3Limits(DefaultPartSizeMiB << 20)
	store := newCountingStore(limits, false)
	u := uploader{store: store, limits: limits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// As the dump command does (streamingMemoryLimit), the collector keeps
	// the heap near what is live: a heap that grows past the limit holds
	// more than it.
	limit := int64(before.HeapAlloc) + 3*limits.partSize
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(limit))
	peak := sampleHeap()
	err := u.upload(context.Background(), "ns/db/big.pgdump.zst", &zeroReader{left: limits.maxObject}, objectOptions{ifAbsent: true})
	peakHeap := peak()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	store.check(t, "ns/db/big.pgdump.zst")
	if got := store.objects["ns/db/big.pgdump.zst"].size; got != limits.maxObject {
		t.Errorf("object of %d bytes, want %d", got, limits.maxObject)
	}
	if store.bytesSent != limits.maxObject {
		t.Errorf("%d bytes sent, want %d", store.bytesSent, limits.maxObject)
	}
	// What was copied on the server is what did not fit in the direct parts.
	if want := limits.maxObject - 8976*limits.partSize; store.copied != want {
		t.Errorf("%d bytes copied on the server, want %d", store.copied, want)
	}
	if store.peakFlight > uploadThreads {
		t.Errorf("%d parts in flight, want at most %d", store.peakFlight, uploadThreads)
	}
	// The heap holds the two part buffers and the part lists whatever the
	// size; over 327,680 parts, nothing was allocated per part's bytes (one
	// buffer per part would be 5 TiB).
	if peakHeap > limit {
		t.Errorf("peak heap %d MiB, more than %d MiB: %d MiB before the upload and 3 parts", peakHeap>>20, limit>>20, before.HeapAlloc>>20)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<30 {
		t.Errorf("the upload allocated %d MiB", alloc>>20)
	}
	t.Logf("%d parts uploaded, %d GiB copied on the server, peak heap %d MiB, %d MiB allocated in all",
		store.partsSent, store.copied>>30, peakHeap>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
}

func TestUploadRefusesMoreThan5TiB(t *testing.T) {
	limits := s3Limits(DefaultPartSizeMiB << 20)
	store := newCountingStore(limits, false)
	u := uploader{store: store, limits: limits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
	err := u.upload(context.Background(), "ns/db/huge", &zeroReader{left: limits.maxObject + 1}, objectOptions{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	store.check(t)
}

// A stream that fits the direct parts is one plain multipart upload: nothing
// copied, no segment.
func TestUploadWithinDirectPartsCopiesNothing(t *testing.T) {
	limits := s3Limits(DefaultPartSizeMiB << 20)
	store := newCountingStore(limits, false)
	u := uploader{store: store, limits: limits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
	size := int64(8976)*limits.partSize - 12345
	if err := u.upload(context.Background(), "k", &zeroReader{left: size}, objectOptions{}); err != nil {
		t.Fatal(err)
	}
	store.check(t, "k")
	if store.copied != 0 || store.next != 1 || store.partsSent != 8976 {
		t.Errorf("%d bytes copied, %d uploads, %d parts; want 0, 1, 8976", store.copied, store.next, store.partsSent)
	}
}

// tinyLimits make every path of the uploader run on a few MiB: 2 direct parts
// of 5 MiB, then segments of 6 parts copied in 2 parts each.
var tinyLimits = uploadLimits{partSize: minPartSize, maxParts: 6, maxCopyPart: 15 << 20, maxObject: 64 << 20}

func TestUploadComposesSegmentsInOrder(t *testing.T) {
	if d, err := tinyLimits.directParts(); err != nil || d != 2 {
		t.Fatalf("directParts = %d, %v; want 2", d, err)
	}
	for _, size := range []int64{0, 1, minPartSize, minPartSize + 1, 2 * minPartSize, 2*minPartSize + 1, 40<<20 + 1, 50<<20 + 12345, 64 << 20} {
		t.Run(strconv.FormatInt(size, 10), func(t *testing.T) {
			store := newCountingStore(tinyLimits, true)
			u := uploader{store: store, limits: tinyLimits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
			data := randomBytes(size)
			if err := u.upload(context.Background(), "dir/key", bytes.NewReader(data), objectOptions{ifAbsent: true}); err != nil {
				t.Fatal(err)
			}
			store.check(t, "dir/key")
			if got := store.objects["dir/key"].data; sha256.Sum256(got) != sha256.Sum256(data) {
				t.Errorf("stored %d bytes that differ from the %d written", len(got), len(data))
			}
		})
	}
}

// A part that fails mid-way through a segment leaves neither uploads nor
// segment objects behind, and its error is the upload's.
func TestUploadFailureCleansSegments(t *testing.T) {
	store := newCountingStore(tinyLimits, true)
	store.failAfter = 45 << 20 // in the second segment, the first one copied
	u := uploader{store: store, limits: tinyLimits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
	err := u.upload(context.Background(), "dir/key", bytes.NewReader(randomBytes(60<<20)), objectOptions{})
	if !IsTransient(err) {
		t.Fatalf("err = %v, want a transient one", err)
	}
	store.check(t)
}

func TestUploadIfAbsentKeepsTheOtherObject(t *testing.T) {
	store := newCountingStore(tinyLimits, true)
	store.objects["dir/key"] = countedObject{size: 3, data: []byte("old")}
	u := uploader{store: store, limits: tinyLimits, threads: uploadThreads, cleanupTimeout: defaultCleanupTimeout}
	for _, size := range []int64{10, 30 << 20} {
		err := u.upload(context.Background(), "dir/key", bytes.NewReader(randomBytes(size)), objectOptions{ifAbsent: true})
		if !errors.Is(err, ErrExists) {
			t.Fatalf("err = %v, want ErrExists", err)
		}
	}
	store.check(t, "dir/key")
	if string(store.objects["dir/key"].data) != "old" {
		t.Error("the existing object was replaced")
	}
}

// sampleHeap samples the live heap until the returned function is called,
// which returns the largest sample.
func sampleHeap() func() int64 {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak int64
		for {
			metrics.Read(sample)
			peak = max(peak, int64(sample[0].Value.Uint64()))
			select {
			case <-stop:
				done <- peak
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() int64 { close(stop); return <-done }
}

func randomBytes(n int64) []byte {
	data := make([]byte, n)
	var x uint64 = 0x9e3779b97f4a7c15
	for i := range data {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		data[i] = byte(x)
	}
	return data
}

func TestSegmentKeysAreMarked(t *testing.T) {
	k := segmentKey("ns/db/20261201T000000Z.pgdump.zst.age", "a/b+c=d-0123456789abcdef0123", 3)
	if !IsSegmentKey(k) || path0(k) != "ns/db/" {
		t.Errorf("segment key %q", k)
	}
	for _, k := range []string{"ns/db/20261201T000000Z.pgdump.zst.age", "ns/db/x.backflow.json", "ns/.hidden"} {
		if IsSegmentKey(k) {
			t.Errorf("%q taken for a segment", k)
		}
	}
}

func path0(k string) string {
	i := bytes.LastIndexByte([]byte(k), '/')
	return k[:i+1]
}

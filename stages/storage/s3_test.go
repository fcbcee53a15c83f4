package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/backflow-dev/backflow/test/servers"
)

var minioServer *servers.MinIO

func TestMain(m *testing.M) {
	var err error
	if minioServer, err = servers.StartMinIO(); err != nil {
		fmt.Fprintln(os.Stderr, "starting MinIO:", err)
		os.Exit(1)
	}
	code := m.Run()
	minioServer.Stop()
	os.Exit(code)
}

// testBackend is an S3 backend on a fresh prefix of server's bucket, with
// the test's knobs applied.
func testBackend(t *testing.T, server *servers.MinIO, knobs func(*S3Config)) *S3Backend {
	t.Helper()
	cfg := S3Config{
		Endpoint: server.Endpoint, Bucket: server.Bucket, Prefix: strings.ReplaceAll(t.Name(), "/", "-"), PathStyle: true,
		Credentials: Credentials{AccessKeyID: server.AccessKey, SecretAccessKey: server.SecretKey},
	}
	if knobs != nil {
		knobs(&cfg)
	}
	b, err := NewS3Backend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tiny makes the multi-segment path run on 50 MiB: 2 direct parts of 5 MiB
// (MinIO's smallest), then segments of 30 MiB copied in 2 parts each.
func tiny(cfg *S3Config) { cfg.limits = tinyLimits }

// leftovers lists what the prefix holds besides want, and every incomplete
// upload in the bucket.
func leftovers(t *testing.T, b *S3Backend, want ...string) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	wanted := map[string]bool{}
	for _, k := range want {
		wanted[b.FullKey(k)] = true
	}
	for obj := range minioServer.Client().ListObjects(ctx, b.Bucket(), minio.ListObjectsOptions{Prefix: b.cfg.Prefix + "/", Recursive: true}) {
		if obj.Err != nil {
			t.Fatal(obj.Err)
		}
		if !wanted[obj.Key] {
			got = append(got, "object "+obj.Key)
		}
	}
	for u := range minioServer.Client().ListIncompleteUploads(ctx, b.Bucket(), b.cfg.Prefix+"/", true) {
		if u.Err != nil {
			t.Fatal(u.Err)
		}
		got = append(got, "incomplete upload of "+u.Key)
	}
	return got
}

func readObject(t *testing.T, b *S3Backend, key string) []byte {
	t.Helper()
	r, err := b.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The multi-segment path on a real server: 2 direct parts, a full segment
// and a partial one, composed by ranged UploadPartCopy into one object whose
// bytes are the stream's, and nothing else left.
func TestS3ComposesSegments(t *testing.T) {
	b := testBackend(t, minioServer, tiny)
	data := randomBytes(50<<20 + 12345)
	if err := b.Create(context.Background(), "dir/big", bytes.NewReader(data), map[string]string{"backflow-source": "test"}); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, b, "dir/big"); sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("read %d bytes that differ from the %d written", len(got), len(data))
	}
	info, err := minioServer.Client().StatObject(context.Background(), b.Bucket(), b.FullKey("dir/big"), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// 2 direct parts, 2 copied from the first segment, 1 from the second.
	if !strings.HasSuffix(info.ETag, "-5") || info.UserMetadata["Backflow-Source"] != "test" {
		t.Errorf("object ETag %s (want 5 parts), metadata %v", info.ETag, info.UserMetadata)
	}
	if l := leftovers(t, b, "dir/big"); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// failingReader fails after n bytes.
type failingReader struct {
	r io.Reader
	n int64
}

var errSourceFailed = errors.New("the source failed")

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errSourceFailed
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func TestS3FailingReaderLeavesNothing(t *testing.T) {
	b := testBackend(t, minioServer, tiny)
	for _, n := range []int64{1 << 20, 8 << 20, 45 << 20} { // in the first part, the direct parts, the second segment
		err := b.Create(context.Background(), "dir/failed", &failingReader{r: bytes.NewReader(randomBytes(60 << 20)), n: n}, nil)
		if !errors.Is(err, errSourceFailed) || IsTransient(err) {
			t.Errorf("after %d bytes: err = %v, want the reader's, not transient", n, err)
		}
	}
	if l := leftovers(t, b); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

func TestS3RefusesMoreThanTheLargestObject(t *testing.T) {
	b := testBackend(t, minioServer, tiny)
	err := b.Put(context.Background(), "dir/huge", bytes.NewReader(randomBytes(tinyLimits.maxObject+1)), nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "larger than the largest object") {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if l := leftovers(t, b); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// barrierReader delivers head, waits until every reader of its group
// delivered its head, then delivers the rest: two uploads that are both
// under way when either completes.
type barrierReader struct {
	head, rest io.Reader
	arrived    *sync.WaitGroup
	once       sync.Once
}

func (r *barrierReader) Read(p []byte) (int, error) {
	n, err := r.head.Read(p)
	if err == io.EOF {
		r.once.Do(func() { r.arrived.Done(); r.arrived.Wait() })
		return r.rest.Read(p)
	}
	return n, err
}

// Two uploads to one key at the same time: one wins, the other fails naming
// the key, leaves no upload behind and does not touch the winner's object.
func TestS3ConcurrentCreateOneWins(t *testing.T) {
	for _, size := range []int64{1 << 20, 12 << 20} { // one PUT each, multipart uploads
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			b := testBackend(t, minioServer, func(c *S3Config) { c.PartSizeMiB = 5 })
			var arrived sync.WaitGroup
			arrived.Add(2)
			contents := [][]byte{randomBytes(size), bytes.Repeat([]byte{7}, int(size))}
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					half := len(contents[i]) / 2
					r := &barrierReader{head: bytes.NewReader(contents[i][:half]), rest: bytes.NewReader(contents[i][half:]), arrived: &arrived}
					errs[i] = b.Create(context.Background(), "dir/same", r, nil)
				}()
			}
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					winner = i
				case errors.Is(err, ErrExists) && strings.Contains(err.Error(), b.String()+"/dir/same"):
				default:
					t.Errorf("upload %d: %v, want ErrExists naming the key", i, err)
				}
			}
			if winner < 0 || errs[0] == nil && errs[1] == nil {
				t.Fatalf("errors %v: want exactly one upload to succeed", errs)
			}
			if got := readObject(t, b, "dir/same"); !bytes.Equal(got, contents[winner]) {
				t.Error("the object is not the winner's")
			}
			if l := leftovers(t, b, "dir/same"); len(l) > 0 {
				t.Errorf("left behind: %v", l)
			}
			// Put replaces; Create never does.
			if err := b.Create(context.Background(), "dir/same", strings.NewReader("late"), nil); !errors.Is(err, ErrExists) {
				t.Errorf("Create over an object: %v", err)
			}
			if err := b.Put(context.Background(), "dir/same", strings.NewReader("replaced"), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestS3WrongSecretKeyIsPermanent(t *testing.T) {
	b := testBackend(t, minioServer, func(c *S3Config) { c.Credentials.SecretAccessKey = "wrong-secret" })
	_, statErr := b.Stat(context.Background(), "dir/x")
	putErr := b.Put(context.Background(), "dir/x", strings.NewReader("x"), nil)
	for _, err := range []error{statErr, putErr} {
		if err == nil || IsTransient(err) || !strings.Contains(err.Error(), "refused the credentials") || !strings.Contains(err.Error(), EnvSecretAccessKey) {
			t.Errorf("err = %v, want a permanent refusal of the credentials", err)
		}
	}
}

// A step whose credentials Secret holds an empty access key fails with a
// message naming the variable, before any request: it never falls back to
// minio-go's anonymous access or to the environment's and the node's
// identity, even when the process's environment holds keys the store
// accepts.
func TestS3EmptyCredentialsAreAnError(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY", minioServer.AccessKey)
	t.Setenv("AWS_SECRET_KEY", minioServer.SecretKey)
	t.Setenv("MINIO_ACCESS_KEY", minioServer.AccessKey)
	t.Setenv("MINIO_SECRET_KEY", minioServer.SecretKey)
	url := minioServer.StorageURL(t.Name())
	for name, env := range map[string]map[string]string{
		EnvAccessKeyID:     {EnvAccessKeyID: "", EnvSecretAccessKey: minioServer.SecretKey},
		EnvSecretAccessKey: {EnvAccessKeyID: minioServer.AccessKey, EnvSecretAccessKey: ""},
	} {
		_, err := Open(url, CredentialsFromEnv(func(k string) string { return env[k] }))
		if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), name) {
			t.Errorf("empty %s: %v, want ErrNoCredentials naming it", name, err)
		}
	}
}

// RefuseAddr is asked about the address of every connection, and its
// refusal fails the request before a byte is sent.
func TestS3RefuseAddrRefusesTheConnection(t *testing.T) {
	var asked []netip.Addr
	refused := errors.New("refused by the test")
	b := testBackend(t, minioServer, func(c *S3Config) {
		c.RefuseAddr = func(a netip.Addr) error { asked = append(asked, a); return refused }
	})
	if _, err := b.Stat(context.Background(), "dir/x"); !errors.Is(err, refused) {
		t.Errorf("stat through a refused address: %v", err)
	}
	if len(asked) == 0 || !asked[0].IsLoopback() {
		t.Errorf("asked about %v, want MinIO's loopback address", asked)
	}
	b = testBackend(t, minioServer, func(c *S3Config) { c.RefuseAddr = func(netip.Addr) error { return nil } })
	if _, err := b.Stat(context.Background(), "dir/x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("stat through an allowed address: %v, want ErrNotFound", err)
	}
}

func TestS3MissingBucketIsPermanent(t *testing.T) {
	b := testBackend(t, minioServer, func(c *S3Config) { c.Bucket = "no-such-bucket" })
	_, statErr := b.Stat(context.Background(), "dir/x")
	putErr := b.Put(context.Background(), "dir/x", strings.NewReader("x"), nil)
	for _, err := range []error{statErr, putErr} {
		if err == nil || IsTransient(err) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "bucket no-such-bucket does not exist") {
			t.Errorf("err = %v, want a permanent missing bucket", err)
		}
	}
}

func TestS3UnknownHostIsPermanent(t *testing.T) {
	b := testBackend(t, minioServer, func(c *S3Config) { c.Endpoint = "http://backflow-no-such-host.invalid:9000" })
	_, err := b.Stat(context.Background(), "dir/x")
	if err == nil || IsTransient(err) || !strings.Contains(err.Error(), "unknown host backflow-no-such-host.invalid") {
		t.Errorf("err = %v, want a permanent unknown host", err)
	}
}

func TestS3RefusedConnectionIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there any more
	b := testBackend(t, minioServer, func(c *S3Config) { c.Endpoint = "http://" + addr })
	if _, err := b.Stat(context.Background(), "dir/x"); !IsTransient(err) {
		t.Errorf("err = %v, want a transient failure", err)
	}
}

// A server that accepts connections and never answers: the request ends as
// transient after the idle timeout instead of hanging.
func TestS3SilentServerIsTransient(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // reads, never answers
		}
	}()
	b := testBackend(t, minioServer, func(c *S3Config) {
		c.Endpoint, c.Region = "http://"+l.Addr().String(), "us-east-1"
		c.idleTimeout, c.cleanupTimeout = time.Second, time.Second
	})
	if _, err := b.Stat(context.Background(), "dir/x"); !IsTransient(err) {
		t.Errorf("Stat: %v, want a transient failure", err)
	}
	if err := b.Put(context.Background(), "dir/x", strings.NewReader("x"), nil); !IsTransient(err) {
		t.Errorf("Put: %v, want a transient failure", err)
	}
}

// proxy forwards connections to target; each direction goes through shape,
// which may slow or stall it.
func proxy(t *testing.T, target string, shape func(conn int, dst io.Writer, src io.Reader)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := int(conns.Add(1))
			go func() {
				defer c.Close()
				s, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { _, _ = io.Copy(c, s) }()
				shape(n, s, c)
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

// stallingProxy forwards to MinIO; a connection that has carried 2 MiB (a
// part's body) stops moving, neither reading nor closing, while stalls() is
// true.
func stallingProxy(t *testing.T, stalls func() bool) string {
	released := make(chan struct{})
	t.Cleanup(func() { close(released) })
	return proxy(t, strings.TrimPrefix(minioServer.Endpoint, "http://"), func(_ int, dst io.Writer, src io.Reader) {
		var sent int64
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
				sent += int64(n)
			}
			if err != nil {
				return
			}
			if sent > 2<<20 && stalls() {
				<-released
				return
			}
		}
	})
}

// A server that stops reading a part's body half-way, every time: the upload
// fails as transient after the idle timeout, and its abort (a small request)
// leaves nothing behind.
func TestS3StallMidBodyIsTransient(t *testing.T) {
	var stalled atomic.Int32
	endpoint := stallingProxy(t, func() bool { stalled.Add(1); return true })
	b := testBackend(t, minioServer, func(c *S3Config) {
		c.Endpoint, c.Region, c.PartSizeMiB = endpoint, "us-east-1", 5
		c.idleTimeout, c.copyIdleTimeout = time.Second, time.Second
	})
	err := b.Put(context.Background(), "dir/stalled", bytes.NewReader(randomBytes(12<<20)), nil)
	if !IsTransient(err) || !strings.Contains(err.Error(), "stalled") || stalled.Load() == 0 {
		t.Fatalf("err = %v (%d stalls), want a transient stall", err, stalled.Load())
	}
	if l := leftovers(t, b); len(l) > 0 {
		t.Errorf("left behind: %v", l)
	}
}

// One stall is a blip: the part is sent again on a new connection.
func TestS3OneStallIsRetried(t *testing.T) {
	var stalled atomic.Bool
	endpoint := stallingProxy(t, func() bool { return stalled.CompareAndSwap(false, true) })
	b := testBackend(t, minioServer, func(c *S3Config) {
		c.Endpoint, c.Region, c.PartSizeMiB = endpoint, "us-east-1", 5
		c.idleTimeout = time.Second
	})
	data := randomBytes(12 << 20)
	if err := b.Put(context.Background(), "dir/stalled-once", bytes.NewReader(data), nil); err != nil || !stalled.Load() {
		t.Fatalf("err = %v (stalled %v), want the upload to go through the stall", err, stalled.Load())
	}
	if got := readObject(t, b, "dir/stalled-once"); !bytes.Equal(got, data) {
		t.Error("the object differs from what was written")
	}
}

// A slow link that keeps moving is no stall: with an idle timeout of 1 s,
// parts that take several seconds each go through.
func TestS3SlowUploadIsNotTimedOut(t *testing.T) {
	target := strings.TrimPrefix(minioServer.Endpoint, "http://")
	endpoint := proxy(t, target, func(_ int, dst io.Writer, src io.Reader) {
		buf := make([]byte, 64<<10) // 64 KiB every 40 ms: about 1.6 MB/s
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
				time.Sleep(40 * time.Millisecond)
			}
			if err != nil {
				return
			}
		}
	})
	b := testBackend(t, minioServer, func(c *S3Config) {
		c.Endpoint, c.Region, c.PartSizeMiB = endpoint, "us-east-1", 5
		c.idleTimeout = time.Second
	})
	data := randomBytes(11 << 20)
	if err := b.Put(context.Background(), "dir/slow", bytes.NewReader(data), nil); err != nil {
		t.Fatal(err)
	}
	if got := readObject(t, b, "dir/slow"); !bytes.Equal(got, data) {
		t.Error("the object differs from what was written")
	}
}

// signalReader delivers head, says so on reached, waits for resume, then
// delivers the rest.
type signalReader struct {
	head, rest      io.Reader
	reached, resume chan struct{}
	once            sync.Once
}

func (r *signalReader) Read(p []byte) (int, error) {
	n, err := r.head.Read(p)
	if err == io.EOF {
		r.once.Do(func() { close(r.reached); <-r.resume })
		return r.rest.Read(p)
	}
	return n, err
}

// MinIO killed mid-upload: the upload fails as transient, and its abort,
// retried until the server is back, leaves no incomplete upload.
func TestS3ServerKilledMidUpload(t *testing.T) {
	server, err := servers.StartMinIO()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	b := testBackend(t, server, func(c *S3Config) { c.PartSizeMiB = 5 })
	data := randomBytes(30 << 20)
	r := &signalReader{head: bytes.NewReader(data[:16<<20]), rest: bytes.NewReader(data[16<<20:]), reached: make(chan struct{}), resume: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- b.Create(context.Background(), "dir/killed", r, nil) }()
	<-r.reached // three parts sent or under way
	server.Kill()
	close(r.resume)
	time.Sleep(3 * time.Second) // an outage, during which the abort keeps trying
	if err := server.Restart(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !IsTransient(err) {
		t.Fatalf("err = %v, want a transient failure", err)
	}
	ctx := context.Background()
	for u := range server.Client().ListIncompleteUploads(ctx, server.Bucket, "", true) {
		t.Errorf("incomplete upload of %s left (%v)", u.Key, u.Err)
	}
	for obj := range server.Client().ListObjects(ctx, server.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		t.Errorf("object %s left (%v)", obj.Key, obj.Err)
	}
}

package main

// The MongoDB part: backflow's own MongoDB engine (stages/source/mongodb)
// through the same pipeline as the file part, against FerretDB on SQLite,
// the only MongoDB-protocol server that can be had here:
//
//	mongodb_insert   the fill: plain InsertMany of the documents, ordered
//	                 batches of 1,000, one collection after the other (as the
//	                 engine's restore sends them)
//	mongodb_find     plain Find over every collection, as many collections at
//	                 once as the dump reads (MB/s of BSON read)
//	mongodb_dump     backflow dump of the database: archive, zstd, age, MinIO
//	mongodb_restore  backflow restore of that object into a fresh database
//
// FerretDB is far slower than the pipeline, so the absolute MB/s are the
// server's; the ratios dump/find and restore/insert say how much of the
// server's speed the pipeline keeps. Dump and restore count the raw archive
// bytes (the BSON plus a few bytes of framing per batch); find and insert
// the BSON. Each phase prints where the machine's CPU went, which says what
// bounds it. BACKFLOW_BENCH_MONGODB_MIB sets the amount of BSON.

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/backflow-dev/backflow/stages/source/mongodb"
	"github.com/backflow-dev/backflow/test/servers"
	"github.com/backflow-dev/backflow/test/tools"

	"github.com/backflow-dev/backflow/test/bench/procfs"
)

const (
	// defaultMongoMiB is the amount of BSON filled by default: the whole part
	// (fill, find, dump, restore) takes about six minutes on two cores.
	defaultMongoMiB = 256
	// mongoBatch is the fill's InsertMany batch, the engine's restore batch.
	mongoBatch = 1000
	sourceDB   = "bench"
	restoreDB  = "restored"
)

// The collections, all about the same size: eight, so that the dump's four
// readers (parallelCollections' default) each read two.
var mongoCollections = []string{"customers", "events", "invoices", "orders", "products", "reviews", "sessions", "shipments"}

func mongoMiB() (int, error) {
	v := os.Getenv("BACKFLOW_BENCH_MONGODB_MIB")
	if v == "" {
		return defaultMongoMiB, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("BACKFLOW_BENCH_MONGODB_MIB is %q, not a number of MiB", v)
	}
	return n, nil
}

// mongoResult is a phase's figure and where the CPU went meanwhile.
type mongoResult struct {
	result
	cpu cpuUse
}

func benchMongoDB(b *bench) error {
	mib, err := mongoMiB()
	if err != nil {
		return err
	}
	// StartFerretDB takes only a built FerretDB; build it once if need be,
	// as the Makefile target does mc and MinIO.
	if _, err := tools.Binary("ferretdb"); err != nil {
		return err
	}
	began := time.Now()
	ferret, err := servers.StartFerretDB()
	if err != nil {
		return err
	}
	defer ferret.Stop()
	procs := watchedProcesses(ferret, b.minio)
	fmt.Printf("mongodb: %d MiB of BSON (BACKFLOW_BENCH_MONGODB_MIB) in %d collections of ~1 KiB documents, FerretDB 1.24 on SQLite, %d cores\n",
		mib, len(mongoCollections), runtime.NumCPU())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	client := ferret.Client()

	fmt.Println("mongodb: insert (the fill)")
	insert, counts, err := mongoInsert(ctx, client, int64(mib)<<20, procs)
	if err != nil {
		return err
	}
	var docs int64
	for _, n := range counts {
		docs += n
	}
	fmt.Printf("mongodb: %d documents, %.1f MiB of BSON, %.0f bytes each on average\n", docs, float64(insert.bytes)/(1<<20), float64(insert.bytes)/float64(docs))

	fmt.Println("mongodb: find")
	find, err := mongoFind(ctx, ferret, procs)
	if err != nil {
		return err
	}
	if find.bytes != insert.bytes {
		return fmt.Errorf("find read %d bytes of BSON, the fill wrote %d", find.bytes, insert.bytes)
	}

	connEnv := append(b.env[:len(b.env):len(b.env)],
		"BACKFLOW_DB_USERNAME="+ferret.User, "BACKFLOW_DB_PASSWORD="+ferret.Password)
	conn := func(db string) string {
		return fmt.Sprintf(`{"mongodb":{"connection":{"host":%q,"port":%d,"database":%q}}}`, ferret.Host, ferret.Port, db)
	}
	fmt.Println("mongodb: dump")
	dump, out, err := timedProcs("mongodb_dump", connEnv, procs, b.dumpCommand("mongodb", conn(sourceDB))...)
	if err != nil {
		return err
	}
	var manifest struct {
		Key     string `json:"key"`
		Size    int64  `json:"size"`
		RawSize int64  `json:"rawSize"`
	}
	if err := json.Unmarshal([]byte(out), &manifest); err != nil {
		return fmt.Errorf("mongodb_dump: reading the manifest: %w", err)
	}
	dump.bytes = manifest.RawSize
	fmt.Printf("mongodb: archive of %.1f MiB raw, %.1f MiB stored (%s)\n", float64(manifest.RawSize)/(1<<20), float64(manifest.Size)/(1<<20), manifest.Key)

	fmt.Println("mongodb: restore")
	restore, _, err := timedProcs("mongodb_restore", connEnv, procs, b.backflow, "restore", "--storage", b.storage,
		"--key", manifest.Key, "--identity-file", b.identity, "--verify-first=false", "--target", conn(restoreDB))
	if err != nil {
		return err
	}
	restore.bytes = manifest.RawSize
	// collStats, not a count: FerretDB counts by reading every document,
	// which would take as long as the find.
	for i, coll := range mongoCollections {
		var stats struct {
			Count int64 `bson:"count"`
		}
		if err := client.Database(restoreDB).RunCommand(ctx, bson.D{{Key: "collStats", Value: coll}}).Decode(&stats); err != nil {
			return fmt.Errorf("collStats of %s.%s: %w", restoreDB, coll, err)
		}
		if stats.Count != counts[i] {
			return fmt.Errorf("restored %s.%s has %d documents, the fill wrote %d", restoreDB, coll, stats.Count, counts[i])
		}
	}
	took := time.Since(began)

	for _, r := range []mongoResult{insert, find, dump, restore} {
		rss := ""
		if r.rssMiB > 0 {
			rss = fmt.Sprintf("  peak RSS %6.1f MiB", r.rssMiB)
		}
		fmt.Printf("  %-15s %7.1f s %8.1f MB/s%s\n", r.name, r.seconds, r.mbps(), rss)
		fmt.Printf("  %-15s cpu %s\n", "", r.cpu)
	}
	if hwm, err := procfs.PeakRSS(procs.ferret); err == nil {
		fmt.Printf("  ferretdb peak RSS %.0f MiB\n", hwm)
	}
	fmt.Printf("  mongodb part took %s (fill %.0f s, find %.0f s, dump %.0f s, restore %.0f s)\n",
		took.Round(time.Second), insert.seconds, find.seconds, dump.seconds, restore.seconds)
	fmt.Println()
	fmt.Printf("ratio mongodb_restore_vs_dump %.2f\n", restore.mbps()/dump.mbps())
	fmt.Printf("ratio mongodb_dump_vs_find %.2f\n", dump.mbps()/find.mbps())
	fmt.Printf("ratio mongodb_restore_vs_insert %.2f\n", restore.mbps()/insert.mbps())
	fmt.Printf("rss mongodb_dump %.0f\n", dump.rssMiB)
	fmt.Printf("rss mongodb_restore %.0f\n", restore.rssMiB)
	return nil
}

// mongoInsert fills the source database with about total bytes of BSON,
// the same share in each collection, and times it: documents are made
// ahead by another goroutine, so the time is the driver's and the server's.
func mongoInsert(ctx context.Context, client *mongo.Client, total int64, procs processes) (mongoResult, []int64, error) {
	if err := client.Database(sourceDB).Drop(ctx); err != nil {
		return mongoResult{}, nil, err
	}
	type batch struct {
		coll int
		docs []any
	}
	batches := make(chan batch, 4)
	genCtx, stop := context.WithCancel(ctx)
	defer stop()
	counts := make([]int64, len(mongoCollections))
	go func() {
		defer close(batches)
		per := total / int64(len(mongoCollections))
		for c := range mongoCollections {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			var bytes int64
			for i := 0; bytes < per; {
				docs := make([]any, 0, mongoBatch)
				for ; len(docs) < mongoBatch && bytes < per; i++ {
					raw, err := bson.Marshal(benchDocument(rng, c, i))
					if err != nil {
						panic(err)
					}
					docs = append(docs, bson.Raw(raw))
					bytes += int64(len(raw))
				}
				select {
				case batches <- batch{c, docs}:
				case <-genCtx.Done():
					return
				}
			}
		}
	}()
	var bytes int64
	mark := sample(procs)
	start := time.Now()
	for b := range batches {
		if _, err := client.Database(sourceDB).Collection(mongoCollections[b.coll]).InsertMany(ctx, b.docs); err != nil {
			return mongoResult{}, nil, fmt.Errorf("filling %s: %w", mongoCollections[b.coll], err)
		}
		counts[b.coll] += int64(len(b.docs))
		for _, d := range b.docs {
			bytes += int64(len(d.(bson.Raw)))
		}
	}
	elapsed := time.Since(start).Seconds()
	return mongoResult{result{name: "mongodb_insert", seconds: elapsed, bytes: bytes}, mark.since(procs, nil)}, counts, nil
}

// mongoFind reads every document of the source database with the driver's
// defaults, as many collections at once as the dump reads, through a fresh
// client of its own as the dump's.
func mongoFind(ctx context.Context, ferret *servers.FerretDB, procs processes) (mongoResult, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(fmt.Sprintf("mongodb://%s:%d/", ferret.Host, ferret.Port)).
		SetAuth(options.Credential{Username: ferret.User, Password: ferret.Password, AuthSource: "admin"}))
	if err != nil {
		return mongoResult{}, err
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	var bytes atomic.Int64
	work := make(chan string)
	errs := make(chan error, len(mongoCollections))
	mark := sample(procs)
	start := time.Now()
	var wg sync.WaitGroup
	for range min(mongodb.DefaultParallelCollections, len(mongoCollections)) {
		wg.Go(func() {
			for coll := range work {
				cur, err := client.Database(sourceDB).Collection(coll).Find(ctx, bson.D{})
				if err != nil {
					errs <- err
					continue
				}
				var n int64
				for cur.Next(ctx) {
					n += int64(len(cur.Current))
				}
				if err := cur.Err(); err != nil {
					errs <- err
				}
				_ = cur.Close(ctx)
				bytes.Add(n)
			}
		})
	}
	for _, c := range mongoCollections {
		work <- c
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return mongoResult{}, fmt.Errorf("find: %w", err)
	}
	return mongoResult{result{name: "mongodb_find", seconds: elapsed, bytes: bytes.Load()}, mark.since(procs, nil)}, nil
}

// timedProcs runs a command like timed, keeps its stdout, and says where
// the CPU went while it ran.
func timedProcs(name string, env []string, procs processes, args ...string) (mongoResult, string, error) {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	mark := sample(procs)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return mongoResult{}, "", fmt.Errorf("%s: %v: %s", name, err, stderr.String())
	}
	elapsed := time.Since(start).Seconds()
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return mongoResult{result{name: name, seconds: elapsed, rssMiB: float64(ru.Maxrss) / 1024}, mark.since(procs, cmd.ProcessState)}, stdout.String(), nil
}

var (
	words = strings.Fields(`lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore
		et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo
		consequat duis aute irure in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat
		cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum`)
	kinds      = []string{"order", "refund", "view", "search", "login", "logout", "purchase", "review"}
	statuses   = []string{"new", "paid", "shipped", "delivered", "cancelled", "returned"}
	cities     = []string{"Lisboa", "Zürich", "København", "Kraków", "São Paulo", "Reykjavík", "Marseille", "Tōkyō", "Oslo", "Dublin"}
	currencies = []string{"EUR", "USD", "GBP", "CHF", "JPY"}
)

// benchDocument is a document of about 1 KiB with what applications store:
// an ObjectID, integers, doubles, dates, a timestamp, enums, non-ASCII
// text, a null, booleans, arrays of strings and of documents, a nested
// document, a UUID, a hash, random bytes and a sentence. About a third of
// its bytes are random (hashes, tokens, numbers), so it compresses as real
// collections do rather than to nothing.
func benchDocument(rng *rand.Rand, coll, i int) bson.D {
	var id bson.ObjectID
	binary.BigEndian.PutUint32(id[0:4], uint32(1795000000+i/100))
	binary.BigEndian.PutUint32(id[4:8], uint32(coll))
	binary.BigEndian.PutUint32(id[8:12], uint32(i))
	at := time.UnixMilli(1795000000000 + int64(i)*7000 + rng.Int64N(5000))
	token := make([]byte, 16)
	payload := make([]byte, 32+rng.IntN(48))
	for _, b := range [][]byte{token, payload} {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
	}
	hash := make([]byte, 32)
	for j := range hash {
		hash[j] = byte(rng.Uint32())
	}
	tags := make(bson.A, 2+rng.IntN(4))
	for j := range tags {
		tags[j] = words[rng.IntN(len(words))]
	}
	items := make(bson.A, 1+rng.IntN(4))
	for j := range items {
		items[j] = bson.D{
			{Key: "sku", Value: fmt.Sprintf("SKU-%05d", rng.IntN(100000))},
			{Key: "name", Value: words[rng.IntN(len(words))] + " " + words[rng.IntN(len(words))]},
			{Key: "qty", Value: int32(1 + rng.IntN(9))},
			{Key: "price", Value: float64(rng.IntN(100000)) / 100},
		}
	}
	note := make([]string, 12+rng.IntN(36))
	for j := range note {
		note[j] = words[rng.IntN(len(words))]
	}
	var discount any
	if rng.IntN(4) == 0 {
		discount = float64(rng.IntN(50)) / 100
	}
	city := cities[rng.IntN(len(cities))]
	return bson.D{
		{Key: "_id", Value: id},
		{Key: "seq", Value: int64(i)},
		{Key: "shard", Value: int32(i % 64)},
		{Key: "createdAt", Value: bson.NewDateTimeFromTime(at)},
		{Key: "updatedAt", Value: bson.NewDateTimeFromTime(at.Add(time.Duration(rng.IntN(86400)) * time.Second))},
		{Key: "ts", Value: bson.Timestamp{T: uint32(at.Unix()), I: uint32(i % 1000)}},
		{Key: "customer", Value: fmt.Sprintf("customer-%06d", rng.IntN(200000))},
		{Key: "email", Value: fmt.Sprintf("user%d@example-%d.org", rng.IntN(1000000), rng.IntN(100))},
		{Key: "kind", Value: kinds[rng.IntN(len(kinds))]},
		{Key: "status", Value: statuses[rng.IntN(len(statuses))]},
		{Key: "amount", Value: float64(rng.IntN(1000000)) / 100},
		{Key: "currency", Value: currencies[rng.IntN(len(currencies))]},
		{Key: "paid", Value: rng.IntN(2) == 0},
		{Key: "discount", Value: discount},
		{Key: "tags", Value: tags},
		{Key: "address", Value: bson.D{
			{Key: "street", Value: fmt.Sprintf("%d %s Street", 1+rng.IntN(300), words[rng.IntN(len(words))])},
			{Key: "city", Value: city},
			{Key: "zip", Value: fmt.Sprintf("%05d", rng.IntN(100000))},
			{Key: "geo", Value: bson.D{{Key: "lat", Value: rng.Float64()*180 - 90}, {Key: "lon", Value: rng.Float64()*360 - 180}}},
		}},
		{Key: "items", Value: items},
		{Key: "session", Value: hex.EncodeToString(hash[:16])},
		{Key: "sha256", Value: hex.EncodeToString(hash)},
		{Key: "token", Value: bson.Binary{Subtype: bson.TypeBinaryUUID, Data: token}},
		{Key: "payload", Value: bson.Binary{Subtype: bson.TypeBinaryGeneric, Data: payload}},
		{Key: "scores", Value: bson.A{rng.Float64(), rng.Float64(), int32(rng.IntN(100))}},
		{Key: "note", Value: strings.Join(note, " ")},
	}
}

// processes are the servers whose CPU a phase accounts for, by PID (0 when
// not found).
type processes struct{ ferret, minio int }

// watchedProcesses finds FerretDB's and MinIO's PIDs by their listen
// addresses (the servers package keeps its processes to itself).
func watchedProcesses(f *servers.FerretDB, m *servers.MinIO) processes {
	ferretArg := fmt.Sprintf("--listen-addr=%s:%d", f.Host, f.Port)
	return processes{
		ferret: findProcess(func(args []string) bool { return slices.Contains(args, ferretArg) }),
		minio:  minioPID(m),
	}
}

// minioPID finds the MinIO server's PID by its listen address.
func minioPID(m *servers.MinIO) int {
	addr := strings.TrimPrefix(strings.TrimPrefix(m.Endpoint, "http://"), "https://")
	return findProcess(func(args []string) bool {
		i := slices.Index(args, addr)
		return i > 0 && args[i-1] == "--address"
	})
}

// findProcess is the PID of the first process whose arguments match, 0 for
// none.
func findProcess(match func(args []string) bool) int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil {
			continue
		}
		if match(strings.Split(string(data), "\x00")) {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	return 0
}

// cpuMark is the CPU time used so far by the machine, the servers and this
// process.
type cpuMark struct {
	at                                  time.Time
	machine, steal, ferret, minio, self float64 // seconds
}

// cpuUse is the CPU used during a phase, in cores (CPU seconds per second).
type cpuUse struct {
	machine, steal, ferret, minio, bench, backflow float64
}

func (c cpuUse) String() string {
	others := c.machine - c.ferret - c.minio - c.bench - c.backflow
	return fmt.Sprintf("(cores) ferretdb %.2f, backflow %.2f, minio %.2f, bench %.2f, others %.2f; machine %.2f of %d, stolen %.2f",
		c.ferret, c.backflow, c.minio, c.bench, max(others, 0), c.machine, runtime.NumCPU(), c.steal)
}

func sample(p processes) cpuMark {
	m := cpuMark{at: time.Now()}
	m.machine, m.steal = procfs.MachineBusy()
	m.ferret, _ = procfs.CPU(p.ferret)
	m.minio, _ = procfs.CPU(p.minio)
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		m.self = tv(ru.Utime) + tv(ru.Stime)
	}
	return m
}

// since is the CPU used from the mark until now; child is a command that
// ran meanwhile, accounted for by its own usage.
func (m cpuMark) since(p processes, child *os.ProcessState) cpuUse {
	now := sample(p)
	wall := now.at.Sub(m.at).Seconds()
	u := cpuUse{
		machine: (now.machine - m.machine) / wall,
		steal:   (now.steal - m.steal) / wall,
		ferret:  (now.ferret - m.ferret) / wall,
		minio:   (now.minio - m.minio) / wall,
		bench:   (now.self - m.self) / wall,
	}
	if child != nil {
		u.backflow = (child.UserTime() + child.SystemTime()).Seconds() / wall
	}
	return u
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

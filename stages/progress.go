package stages

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	v1 "github.com/backflow-dev/backflow/api/v1alpha1"
	"github.com/backflow-dev/backflow/stages/source"
)

// Progress counts the bytes that pass through a stream and reports them to
// a file (Argo's $ARGO_PROGRESS_FILE) in Argo's N/M format, in MiB of the
// expected total: a share of the step's work that Argo's UI shows as a
// percentage, and from which the controller reads the bytes done and
// expected. While the stream runs the share stays at most 99%: an expected
// total is an estimate (the previous backup's size, the source's own
// figure), and only the end of the stream makes it 100%. Without an
// expected total it reports 0/1, Argo's own value for a step that says
// nothing: a byte count without a total is no share of anything.
type Progress struct {
	file  string
	total int64 // expected bytes; 0 when unknown
	done  atomic.Int64
	stop  chan struct{}
	ended chan struct{}
}

// progressInterval is how often the progress file is rewritten; the
// compiled Workflows make Argo's executor report it every
// compiler.ProgressReportInterval.
const progressInterval = time.Second

// StartProgress starts reporting to file; with an empty file name it only
// counts. total is the expected number of bytes, 0 when unknown.
func StartProgress(file string, total int64) *Progress {
	p := &Progress{file: file, total: max(total, 0), stop: make(chan struct{}), ended: make(chan struct{})}
	go func() {
		defer close(p.ended)
		if file == "" {
			return
		}
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.write(false)
			}
		}
	}()
	return p
}

// Reader counts what is read through r.
func (p *Progress) Reader(r io.Reader) io.Reader { return progressReader{r, p} }

// Bytes is the number of bytes counted so far.
func (p *Progress) Bytes() int64 { return p.done.Load() }

// Finish stops reporting; complete writes M/M.
func (p *Progress) Finish(complete bool) {
	close(p.stop)
	<-p.ended
	if complete {
		p.write(true)
	}
}

func (p *Progress) write(complete bool) {
	if p.file == "" {
		return
	}
	_ = os.WriteFile(p.file, []byte(ProgressLine(p.done.Load(), p.total, complete)+"\n"), 0o644)
}

// mib is the unit of the progress lines.
const mib = 1 << 20

// maxRunningPercent is the most a running stream reports.
const maxRunningPercent = 99

// ProgressLine is the N/M line for done bytes of an expected total (0 when
// unknown), in MiB rounded down: N is always the MiB done, and a stream
// that passes 99% of its total makes the total grow with it, so that it
// reads 99% until it ends. complete is the end of the stream: M/M, M the
// MiB done (at least 1).
func ProgressLine(done, total int64, complete bool) string {
	n := done / mib
	if complete {
		m := max((done+mib-1)/mib, 1)
		return fmt.Sprintf("%d/%d", m, m)
	}
	if total <= 0 {
		return "0/1"
	}
	m := max((total+mib-1)/mib, 1)
	if n*100 > m*maxRunningPercent {
		m = (n*100 + maxRunningPercent - 1) / maxRunningPercent
	}
	return fmt.Sprintf("%d/%d", n, m)
}

type progressReader struct {
	r io.Reader
	p *Progress
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.done.Add(int64(n))
	return n, err
}

// estimateTimeout bounds the source's estimate, so that a slow answer
// never holds up the dump.
const estimateTimeout = 30 * time.Second

// expectedSize is the total a dump's progress counts against: the
// configured one (the series' previous verified backup), else the source's
// own estimate. Only a dump that reports progress asks the source; an
// estimate that fails is said on stderr and the dump runs without a total.
func expectedSize(ctx context.Context, engine source.Engine, cfg DumpConfig) int64 {
	if cfg.ExpectedSize > 0 {
		fmt.Fprintf(cfg.Stderr, "expecting %s: the raw size of the series' previous verified backup\n", v1.FormatSize(cfg.ExpectedSize))
		return cfg.ExpectedSize
	}
	if cfg.ProgressFile == "" {
		return 0
	}
	ctx, cancel := context.WithTimeout(ctx, estimateTimeout)
	defer cancel()
	size, err := engine.EstimateSize(ctx, cfg.Source, cfg.SourceOptions)
	switch {
	case err != nil:
		fmt.Fprintf(cfg.Stderr, "no expected size for progress: the estimate of %s failed: %v\n", engine.Title(), err)
		return 0
	case size > 0:
		fmt.Fprintf(cfg.Stderr, "expecting about %s, the estimate of %s: the series has no verified backup yet\n", v1.FormatSize(size), engine.Title())
	}
	return size
}

package stages

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"
)

// Progress counts the bytes that pass through a stream and reports them in
// Argo's N/M format to a file (Argo's $ARGO_PROGRESS_FILE), in MiB. A dump's
// total is unknown until it ends: while streaming M is N+1, and at the end
// N/N.
type Progress struct {
	file  string
	total int64 // 0 when unknown
	done  atomic.Int64
	stop  chan struct{}
	ended chan struct{}
}

// progressInterval is how often the progress file is rewritten; Argo's
// executor reads it every few seconds.
const progressInterval = time.Second

// StartProgress starts reporting to file; with an empty file name it only
// counts.
func StartProgress(file string, total int64) *Progress {
	p := &Progress{file: file, total: total, stop: make(chan struct{}), ended: make(chan struct{})}
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

// Finish stops reporting; complete writes N/N.
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
	const mib = 1 << 20
	n := (p.done.Load() + mib - 1) / mib
	m := n + 1
	switch {
	case complete:
		n = max(n, 1)
		m = n
	case p.total > 0:
		m = max((p.total+mib-1)/mib, n+1)
	}
	_ = os.WriteFile(p.file, []byte(fmt.Sprintf("%d/%d\n", n, m)), 0o644)
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

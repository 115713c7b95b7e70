package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxShownErrors bounds how many error bodies a scenario keeps: enough to
// diagnose, not enough to flood the report when every request fails.
const maxShownErrors = 3

// percentile returns the nearest-rank p-th percentile (0..100) of an
// ascending slice; 0 for an empty one. Nearest rank always returns a real
// sample, which keeps "max" and "p100" identical and small-N figures honest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	return sorted[min(max(rank-1, 0), n-1)]
}

// ms converts a duration to fractional milliseconds for the JSON summary.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// errLog counts failed requests and keeps the first few messages. It is
// shared by concurrent senders, hence the mutex.
type errLog struct {
	mu    sync.Mutex
	n     int
	first []string
}

// add records err unless ctx is already done: requests cut off by the
// timeout or by our own cancellation are not homeserver errors.
func (e *errLog) add(ctx context.Context, err error) {
	if err == nil || ctx.Err() != nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if len(e.first) < maxShownErrors {
		// One line per error keeps the report readable for HTML/JSON bodies.
		e.first = append(e.first, strings.Join(strings.Fields(err.Error()), " "))
	}
}

// Scenario kinds select the figures printed for a result.
const (
	kindSeq  = "seq"
	kindTput = "throughput"
	kindWake = "wakeup"
	kindInit = "initial"
)

// result is one scenario's figures; it is both printed and JSON-encoded.
// Figures that only some scenarios have are pointers so the JSON omits them
// where they make no sense, while a real zero is still printed.
type result struct {
	Index       int      `json:"-"`
	kind        string   // selects the text layout
	Name        string   `json:"name"`
	Title       string   `json:"-"`
	Skipped     bool     `json:"skipped,omitempty"`
	Aborted     string   `json:"aborted,omitempty"`
	OK          int      `json:"ok"`
	Errors      int      `json:"errors"`
	FirstErrors []string `json:"first_errors,omitempty"`
	ElapsedMS   float64  `json:"elapsed_ms"`
	MsgsPerSec  *float64 `json:"msgs_per_sec,omitempty"`
	P50MS       float64  `json:"p50_ms"`
	P90MS       float64  `json:"p90_ms"`
	P99MS       float64  `json:"p99_ms"`
	MaxMS       float64  `json:"max_ms"`
	MinMS       float64  `json:"min_ms"`
	MedianMS    float64  `json:"median_ms"`
	Early       *int     `json:"early,omitempty"`
	StartP50MS  *float64 `json:"from_send_start_p50_ms,omitempty"`
	StartP99MS  *float64 `json:"from_send_start_p99_ms,omitempty"`
	RoomsSeen   *int     `json:"rooms_seen,omitempty"`
	RoomsWant   *int     `json:"rooms_want,omitempty"`
	SyncBytes   *int     `json:"sync_bytes,omitempty"`

	// Filled by the scenarios, exported through the pointers by finish.
	early, roomsSeen, roomsWant, syncBytes int
	fromStart                              []time.Duration // wake-up measured from send start
	startP50, startP99                     float64

	measured                bool // false when setup failed: no figures to print
	p50, p90, p99, lo, maxD time.Duration
	elapsed                 time.Duration
	rate                    float64
}

func newResult(kind, name, title string) *result {
	return &result{kind: kind, Name: name, Title: title}
}

// finish fills the derived figures from raw latency samples and the error log.
func (r *result) finish(samples []time.Duration, elapsed time.Duration, el *errLog) {
	slices.Sort(samples)
	r.measured = true
	r.OK = len(samples)
	r.elapsed = elapsed
	r.ElapsedMS = ms(elapsed)
	r.p50, r.p90, r.p99 = percentile(samples, 50), percentile(samples, 90), percentile(samples, 99)
	r.maxD, r.lo = percentile(samples, 100), percentile(samples, 0)
	r.P50MS, r.P90MS, r.P99MS = ms(r.p50), ms(r.p90), ms(r.p99)
	r.MaxMS, r.MinMS, r.MedianMS = ms(r.maxD), ms(r.lo), ms(r.p50)
	switch r.kind {
	case kindSeq, kindTput:
		r.rate = rate(r.OK, elapsed)
		r.MsgsPerSec = &r.rate
	case kindWake:
		slices.Sort(r.fromStart)
		r.startP50, r.startP99 = ms(percentile(r.fromStart, 50)), ms(percentile(r.fromStart, 99))
		r.Early, r.StartP50MS, r.StartP99MS = &r.early, &r.startP50, &r.startP99
	case kindInit:
		r.RoomsSeen, r.RoomsWant, r.SyncBytes = &r.roomsSeen, &r.roomsWant, &r.syncBytes
	}
	if el != nil {
		el.mu.Lock()
		r.Errors, r.FirstErrors = el.n, slices.Clone(el.first)
		el.mu.Unlock()
	}
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n)/d.Seconds()*10) / 10
}

// abort marks a scenario that could not run to completion.
func (r *result) abort(err error) *result {
	if err != nil && r.Aborted == "" {
		r.Aborted = err.Error()
	}
	return r
}

// write prints the scenario in the fixed, grep-friendly text layout.
func (r *result) write(w io.Writer) {
	if r.Skipped {
		fmt.Fprintf(w, "== %d. %s: skipped\n", r.Index, r.Name)
		return
	}
	fmt.Fprintf(w, "== %d. %s\n", r.Index, r.Title)
	head := fmt.Sprintf("   ok=%d errors=%d", r.OK, r.Errors)
	switch {
	case !r.measured:
	case r.kind == kindSeq:
		fmt.Fprintf(w, "%s  p50=%s p90=%s p99=%s max=%s  %.1f msgs/s\n", head,
			fmtMS(r.p50), fmtMS(r.p90), fmtMS(r.p99), fmtMS(r.maxD), r.rate)
	case r.kind == kindTput:
		fmt.Fprintf(w, "%s  elapsed=%.3fs  %.1f msgs/s  p50=%s p99=%s\n", head,
			r.elapsed.Seconds(), r.rate, fmtMS(r.p50), fmtMS(r.p99))
	case r.kind == kindWake:
		fmt.Fprintf(w, "%s  p50=%s p99=%s max=%s  early=%d  from-send-start p50=%s p99=%s\n", head,
			fmtMS(r.p50), fmtMS(r.p99), fmtMS(r.maxD), r.early,
			fmtMS(percentile(r.fromStart, 50)), fmtMS(percentile(r.fromStart, 99)))
	case r.kind == kindInit:
		verdict := "ok"
		if r.roomsSeen != r.roomsWant {
			verdict = "MISSING"
		}
		fmt.Fprintf(w, "%s  min=%s median=%s  rooms=%d/%d %s  size=%.1fKB\n", head,
			fmtMS(r.lo), fmtMS(r.p50), r.roomsSeen, r.roomsWant, verdict, float64(r.syncBytes)/1024)
	}
	for _, e := range r.FirstErrors {
		fmt.Fprintf(w, "   error: %s\n", e)
	}
	if hidden := r.Errors - len(r.FirstErrors); hidden > 0 {
		fmt.Fprintf(w, "   (%d more errors not shown)\n", hidden)
	}
	if r.Aborted != "" {
		fmt.Fprintf(w, "   aborted: %s\n", r.Aborted)
	}
}

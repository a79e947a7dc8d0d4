package monitor

import (
	"bytes"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// /metrics is written by hand in Prometheus' text exposition format
// (version 0.0.4): the evnats_ families fresh on every request, into a
// pooled buffer, and the Go runtime and process_ families from
// client_golang's collectors, rendered at most once per runtimeEvery.
// Through client_golang's registry alone a request cost 0.45 ms and 1,100
// allocations (110 KB), most of it building, sorting and checking
// constant metrics; scraped every 100 ms that garbage alone started a
// collection every few seconds on an otherwise allocation-free server.

// runtimeEvery is how long the go_ and process_ figures are reused: they
// change slowly, and a Prometheus scrape interval is seconds.
const runtimeEvery = time.Second

// textContentType is the text exposition format's media type.
const textContentType = "text/plain; version=0.0.4; charset=utf-8"

// runtimeMetrics caches the go_ and process_ families as text. Shared by
// the net/http goroutines; mu guards at and text.
type runtimeMetrics struct {
	reg *prometheus.Registry // immutable

	mu   sync.Mutex
	at   time.Time    // when text was rendered
	text bytes.Buffer // the families, rendered
}

func newRuntimeMetrics() *runtimeMetrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), newProcessCollector())
	return &runtimeMetrics{reg: reg}
}

// appendTo appends the families, rendering them again when they are
// older than runtimeEvery.
func (r *runtimeMetrics) appendTo(b []byte) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); r.text.Len() == 0 || now.Sub(r.at) >= runtimeEvery {
		r.at = now
		r.text.Reset()
		mfs, _ := r.reg.Gather() // a collector's error leaves its family out
		for _, mf := range mfs {
			_, _ = expfmt.MetricFamilyToText(&r.text, mf)
		}
	}
	return append(b, r.text.Bytes()...)
}

// bufPool holds response buffers for /metrics.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (m *Monitor) metrics(w http.ResponseWriter, _ *http.Request) {
	bp := bufPool.Get().(*[]byte)
	b := m.appendMetrics((*bp)[:0])
	b = m.runtime.appendTo(b)
	h := w.Header()
	h.Set("Content-Type", textContentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// expo appends metric families in the text exposition format. A family's
// HELP and TYPE lines are written before its first sample, so the caller
// writes each family's samples together, and a family with no samples is
// left out, as client_golang leaves it.
type expo struct {
	b   []byte
	cur string // the family whose samples are being written
}

func (e *expo) int(m metric, v int64, labels ...string) {
	e.start(m, labels)
	e.b = strconv.AppendInt(e.b, v, 10)
	e.b = append(e.b, '\n')
}

func (e *expo) uint(m metric, v uint64, labels ...string) {
	e.start(m, labels)
	e.b = strconv.AppendUint(e.b, v, 10)
	e.b = append(e.b, '\n')
}

func (e *expo) float(m metric, v float64, labels ...string) {
	e.start(m, labels)
	switch {
	case math.IsNaN(v):
		e.b = append(e.b, "NaN"...)
	case math.IsInf(v, 1):
		e.b = append(e.b, "+Inf"...)
	case math.IsInf(v, -1):
		e.b = append(e.b, "-Inf"...)
	default:
		e.b = strconv.AppendFloat(e.b, v, 'g', -1, 64)
	}
	e.b = append(e.b, '\n')
}

// start writes the family's header when it is new, then the sample's name
// and labels (values escaped: they may be a client's stream or leaf name),
// up to the value.
func (e *expo) start(m metric, values []string) {
	if e.cur != m.name {
		e.cur = m.name
		e.b = append(e.b, "# HELP "...)
		e.b = append(e.b, m.name...)
		e.b = append(e.b, ' ')
		e.b = appendEscaped(e.b, m.help, false)
		e.b = append(e.b, "\n# TYPE "...)
		e.b = append(e.b, m.name...)
		e.b = append(e.b, ' ')
		e.b = append(e.b, m.kind()...)
		e.b = append(e.b, '\n')
	}
	e.b = append(e.b, m.name...)
	// Labels in name order, as client_golang writes them: the next one
	// is the least name after the last written (a handful per metric).
	last := ""
	for k := range values {
		i := -1
		for j, l := range m.labels[:len(values)] {
			if l > last && (i < 0 || l < m.labels[i]) {
				i = j
			}
		}
		if k == 0 {
			e.b = append(e.b, '{')
		} else {
			e.b = append(e.b, ',')
		}
		last = m.labels[i]
		e.b = append(e.b, last...)
		e.b = append(e.b, `="`...)
		e.b = appendEscaped(e.b, values[i], true)
		e.b = append(e.b, '"')
	}
	if len(values) > 0 {
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ' ')
}

// appendEscaped appends s with backslashes and newlines escaped, and
// double quotes too in a label value; invalid UTF-8 becomes U+FFFD, which
// the format requires.
func appendEscaped(b []byte, s string, quote bool) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

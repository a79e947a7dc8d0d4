package monitor

import (
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// hostile is a name a client may give a stream, consumer or leaf link:
// everything the text format escapes, and more.
const hostile = "a\\b\"c\nd\u20ac{e}=,f"

// richSource is a Source with every kind of metric filled.
type richSource struct{ fakeSource }

func (r *richSource) Varz() *Varz {
	return &Varz{ID: "ID", Name: hostile, Version: "2.0", IO: "gnet", Start: time.Unix(1700000000, 5e8),
		ConfigLoadTime: time.Unix(1700000001, 0), Connections: 3, TotalConnections: 9, Subscriptions: 4,
		InMsgs: 1 << 60, OutMsgs: 7, InBytes: 8, OutBytes: 9, SlowConsumers: 1, StaleConnections: 2,
		MaxConn: 65536, MaxPayload: 1 << 20}
}

func (r *richSource) Loops() []LoopStat {
	return []LoopStat{{Index: 0, Conns: 2, Reads: 10, Flushes: 11, Writevs: 12, Iovecs: 13, InboxBatches: 14,
		InboxMsgs: 15, Busy: 1500 * time.Millisecond, InMsgs: 16, OutMsgs: 17}, {Index: 1, Busy: 3}}
}

func (r *richSource) JetStream(bool, bool) *JSUsage {
	return &JSUsage{Stats: JetStreamStats{Memory: 1, Store: 2, API: APIStats{Total: 3, Errors: 4}},
		Streams: []StreamUsage{
			{Name: "S1", Storage: "file", Msgs: 5, Bytes: 6, NumConsumers: 2, Consumers: []ConsumerUsage{
				{Name: "C1", Pending: 1, AckPending: 2, Redelivered: 3, Waiting: 4},
				{Name: hostile, Pending: 10, AckPending: 20, Redelivered: 30}}},
			{Name: hostile, Storage: "memory", Msgs: 7}}}
}

func (r *richSource) MQTT() (MQTTStat, bool) {
	return MQTTStat{Sessions: 1, Connected: 2, Retained: 3, RetainedBytes: 4}, true
}

func (r *richSource) Leafs(bool, string) []*LeafInfo {
	return []*LeafInfo{{ID: 1, Name: hostile, Account: "$G", IsSpoke: true, InMsgs: 1, OutMsgs: 2, InBytes: 3,
		OutBytes: 4, NumSubs: 5}, {ID: 2, Name: "hub", Account: "A"}}
}

// TestMetricsMatchClientGolang: the hand-written /metrics says what
// client_golang's registry says for the same figures (a reference
// collector built from constant metrics, as /metrics once was), hostile
// names included, and parses with Prometheus' own parser.
func TestMetricsMatchClientGolang(t *testing.T) {
	src := &richSource{}
	m := New(src)
	code, body := get(t, m, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	got, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(&refCollector{src: src})
	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 40 {
		t.Fatalf("the reference gathered %d families", len(want))
	}
	for _, w := range want {
		g := got[w.GetName()]
		if g == nil {
			t.Errorf("no %s", w.GetName())
			continue
		}
		if !proto.Equal(norm(g), norm(w)) {
			t.Errorf("%s:\n got %v\nwant %v", w.GetName(), g, w)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "evnats_") && !slicesHas(want, name) {
			t.Errorf("%s is not in the reference", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if got[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestMetricsInvalidUTF8: a label value that is not UTF-8 (a leaf peer's
// server name, say) is written with U+FFFD, and the page still parses.
func TestMetricsInvalidUTF8(t *testing.T) {
	var e expo
	e.int(mLeafSubs, 1, "1", "x\xffy", "$G", "true")
	p := expfmt.NewTextParser(model.UTF8Validation)
	got, err := p.TextToMetricFamilies(strings.NewReader(string(e.b)))
	if err != nil {
		t.Fatalf("%v in %q", err, e.b)
	}
	for _, l := range got[mLeafSubs.name].GetMetric()[0].GetLabel() {
		if l.GetName() == "name" && l.GetValue() != "x\uFFFDy" {
			t.Fatalf("name label %q", l.GetValue())
		}
	}
}

// norm orders a family's series by their labels (the reference sorts
// them; the text keeps the order written) and drops what the text format
// does not carry.
func norm(f *dto.MetricFamily) *dto.MetricFamily {
	f = proto.Clone(f).(*dto.MetricFamily)
	key := func(m *dto.Metric) string {
		var b strings.Builder
		for _, l := range m.GetLabel() {
			b.WriteString(l.GetName() + "=" + l.GetValue() + ";")
		}
		return b.String()
	}
	ms := f.GetMetric()
	for i := range ms {
		ms[i].TimestampMs = nil
		for j := i + 1; j < len(ms); j++ {
			if key(ms[j]) < key(ms[i]) {
				ms[i], ms[j] = ms[j], ms[i]
			}
		}
	}
	return f
}

func slicesHas(fs []*dto.MetricFamily, name string) bool {
	for _, f := range fs {
		if f.GetName() == name {
			return true
		}
	}
	return false
}

// refCollector is the reference: /metrics as a prometheus.Collector of
// constant metrics.
type refCollector struct{ src Source }

var refDescs = func() map[string]*prometheus.Desc {
	d := make(map[string]*prometheus.Desc, len(Metrics))
	for _, m := range Metrics {
		d[m.name] = prometheus.NewDesc(m.name, m.help, m.labels, nil)
	}
	return d
}()

func (c *refCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range refDescs {
		ch <- d
	}
}

func (c *refCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(m metric, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(refDescs[m.name], t, v, labels...)
	}
	gauge := func(m metric, v float64, labels ...string) { emit(m, prometheus.GaugeValue, v, labels...) }
	counter := func(m metric, v float64, labels ...string) { emit(m, prometheus.CounterValue, v, labels...) }

	src := c.src
	v := src.Varz()
	gauge(mInfo, 1, v.ID, v.Name, v.Version, v.IO)
	gauge(mStart, float64(v.Start.UnixNano())/1e9)
	gauge(mCfgLoad, float64(v.ConfigLoadTime.UnixNano())/1e9)
	gauge(mConns, float64(v.Connections))
	counter(mTotalConns, float64(v.TotalConnections))
	gauge(mSubs, float64(v.Subscriptions))
	counter(mInMsgs, float64(v.InMsgs))
	counter(mOutMsgs, float64(v.OutMsgs))
	counter(mInBytes, float64(v.InBytes))
	counter(mOutBytes, float64(v.OutBytes))
	counter(mSlow, float64(v.SlowConsumers))
	counter(mStale, float64(v.StaleConnections))
	gauge(mMaxConns, float64(v.MaxConn))
	gauge(mMaxPayload, float64(v.MaxPayload))

	for _, l := range src.Loops() {
		i := strconv.Itoa(l.Index)
		gauge(mLoopConns, float64(l.Conns), i)
		counter(mLoopReads, float64(l.Reads), i)
		counter(mLoopFlushes, float64(l.Flushes), i)
		counter(mLoopWritev, float64(l.Writevs), i)
		counter(mLoopIovecs, float64(l.Iovecs), i)
		counter(mLoopBatches, float64(l.InboxBatches), i)
		counter(mLoopBatchMsgs, float64(l.InboxMsgs), i)
		counter(mLoopBusy, l.Busy.Seconds(), i)
		counter(mLoopIn, float64(l.InMsgs), i)
		counter(mLoopOut, float64(l.OutMsgs), i)
	}

	if u := src.JetStream(true, false); u == nil {
		gauge(mJSEnabled, 0)
	} else {
		gauge(mJSEnabled, 1)
		counter(mJSAPI, float64(u.Stats.API.Total))
		counter(mJSAPIErr, float64(u.Stats.API.Errors))
		gauge(mJSMem, float64(u.Stats.Memory))
		gauge(mJSStore, float64(u.Stats.Store))
		gauge(mJSStreams, float64(len(u.Streams)))
		for _, s := range u.Streams {
			gauge(mStMsgs, float64(s.Msgs), s.Name, s.Storage)
			gauge(mStBytes, float64(s.Bytes), s.Name, s.Storage)
			gauge(mStConsumers, float64(s.NumConsumers), s.Name)
			var pend, ack, red float64
			for _, co := range s.Consumers {
				pend += float64(co.Pending)
				ack += float64(co.AckPending)
				red += float64(co.Redelivered)
				gauge(mCoPending, float64(co.Pending), s.Name, co.Name)
				gauge(mCoAckPending, float64(co.AckPending), s.Name, co.Name)
				gauge(mCoRedeliv, float64(co.Redelivered), s.Name, co.Name)
				gauge(mCoWaiting, float64(co.Waiting), s.Name, co.Name)
			}
			gauge(mStPending, pend, s.Name)
			gauge(mStAckPending, ack, s.Name)
			gauge(mStRedelivered, red, s.Name)
		}
	}

	if mq, ok := src.MQTT(); ok {
		gauge(mMQTTSessions, float64(mq.Sessions))
		gauge(mMQTTConns, float64(mq.Connected))
		gauge(mMQTTRetained, float64(mq.Retained))
		gauge(mMQTTRetBytes, float64(mq.RetainedBytes))
	}

	leafs := src.Leafs(false, "")
	gauge(mLeafs, float64(len(leafs)))
	for _, l := range leafs {
		lb := []string{strconv.FormatUint(l.ID, 10), l.Name, l.Account, strconv.FormatBool(l.IsSpoke)}
		counter(mLeafInMsgs, float64(l.InMsgs), lb...)
		counter(mLeafOutMsgs, float64(l.OutMsgs), lb...)
		counter(mLeafInBytes, float64(l.InBytes), lb...)
		counter(mLeafOutBytes, float64(l.OutBytes), lb...)
		gauge(mLeafSubs, float64(l.NumSubs), lb...)
	}
}

// TestStatmFresh: the statm file held open reads afresh: the resident
// size follows memory the process touches, and matches a fresh open.
func TestStatmFresh(t *testing.T) {
	_, before, ok := statm()
	if !ok {
		t.Skip("no /proc/self/statm")
	}
	big := make([]byte, 64<<20)
	for i := 0; i < len(big); i += 4096 {
		big[i] = 1
	}
	_, after, _ := statm()
	if after < before+32<<20 {
		t.Fatalf("rss %d after touching 64 MiB, %d before", after, before)
	}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	v, _ := strconv.ParseInt(f[0], 10, 64)
	if vs, _, _ := statm(); vs-v*int64(os.Getpagesize()) > 64<<20 || v*int64(os.Getpagesize())-vs > 64<<20 {
		t.Errorf("vsize %d, /proc says %d pages", vs, v) // the runtime may map an arena between the reads
	}
	runtime.KeepAlive(big)
}

// BenchmarkRuntimeRender is the once-a-second rendering of the go_ and
// process_ families that /metrics reuses in between.
func BenchmarkRuntimeRender(b *testing.B) {
	r := newRuntimeMetrics()
	var buf []byte
	b.ReportAllocs()
	for range b.N {
		r.at = time.Time{}
		buf = r.appendTo(buf[:0])
	}
}

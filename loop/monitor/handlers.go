package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evnats/evnats/router"
)

// Endpoints are the paths served, as nats-server names them.
var Endpoints = []string{"/", "/varz", "/connz", "/subsz", "/jsz", "/accountz", "/accstatz",
	"/healthz", "/routez", "/gatewayz", "/leafz", "/expvarz", "/metrics", "/loopz"}

// Monitor serves the endpoints for one server.
type Monitor struct {
	src Source
	mux *http.ServeMux
	cpu cpuSampler
	// runtime renders /metrics' go_ and process_ families (exposition.go).
	runtime *runtimeMetrics

	mu   sync.Mutex        // guards reqs
	reqs map[string]uint64 // requests per endpoint (/varz http_req_stats)
}

// New returns a Monitor reading src.
func New(src Source) *Monitor {
	m := &Monitor{src: src, mux: http.NewServeMux(), reqs: make(map[string]uint64), runtime: newRuntimeMetrics()}
	h := map[string]http.HandlerFunc{
		"/varz":           m.varz,
		"/connz":          m.connz,
		"/subsz":          m.subsz,
		"/subscriptionsz": m.subsz,
		"/jsz":            m.jsz,
		"/accountz":       m.accountz,
		"/accstatz":       m.accstatz,
		"/healthz":        m.healthz,
		"/routez":         m.routez,
		"/gatewayz":       m.gatewayz,
		"/leafz":          m.leafz,
		"/expvarz":        expvarz,
		"/metrics":        m.metrics,
		"/loopz":          m.loopz,
		"/":               m.root,
	}
	for path, f := range h {
		m.mux.HandleFunc(path, m.count(path, f))
	}
	return m
}

// Request answers one endpoint without HTTP: path as served ("/connz"),
// q its query parameters. It returns the status and the body (JSON, or
// the error text of a 400), for responders that are not HTTP (a system
// account's $SYS.REQ.SERVER.PING.CONNZ, say). Safe for concurrent use.
func (m *Monitor) Request(path string, q url.Values) (int, []byte) {
	r := httptest.NewRequest(http.MethodGet, (&url.URL{Path: path, RawQuery: q.Encode()}).String(), nil)
	r = r.WithContext(context.WithValue(r.Context(), notHTTP{}, true))
	w := httptest.NewRecorder()
	m.ServeHTTP(w, r)
	return w.Code, w.Body.Bytes()
}

// notHTTP marks a request made by Request.
type notHTTP struct{}

// ServeHTTP serves the monitoring endpoints.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) { m.mux.ServeHTTP(w, r) }

func (m *Monitor) count(path string, f http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if path == "/" && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Context().Value(notHTTP{}) == nil { // http_req_stats counts HTTP requests alone, as nats-server
			m.mu.Lock()
			m.reqs[path]++
			m.mu.Unlock()
		}
		f(w, r)
	}
}

func (m *Monitor) root(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.Header.Get("Accept"), "text/html") || r.URL.Query().Has("html") {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(livePage)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintf(w, "evnats monitoring: %s\n", strings.Join(Endpoints[1:], " "))
}

// Varz is the /varz document with CPU and request counters filled.
func (m *Monitor) Varz() *Varz {
	v := m.src.Varz()
	v.CPU = m.cpu.percent()
	m.mu.Lock()
	v.HTTPReqStats = make(map[string]uint64, len(m.reqs))
	for k, n := range m.reqs {
		v.HTTPReqStats[k] = n
	}
	m.mu.Unlock()
	return v
}

func (m *Monitor) varz(w http.ResponseWriter, _ *http.Request) { writeJSON(w, m.Varz()) }

func (m *Monitor) subsz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subs, _, ok := decodeSubs(w, q)
	if !ok {
		return
	}
	offset, ok1 := decodeInt(w, q, "offset")
	limit, ok2 := decodeInt(w, q, "limit")
	if !ok1 || !ok2 {
		return
	}
	list, st := m.src.Subs()
	sz := &Subsz{Now: time.Now().UTC(), SublistStats: st, Offset: max(offset, 0), Limit: limit}
	if sz.Limit <= 0 {
		sz.Limit = 1024
	}
	sz.ID = m.src.Varz().ID
	if test := q.Get("test"); test != "" {
		if !router.ValidLiteralSubject(test) {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte("invalid test subject, must be valid publish subject"))
			return
		}
		kept := list[:0]
		for _, s := range list {
			if router.SubjectMatches(s.Subject, test) {
				kept = append(kept, s)
			}
		}
		list = kept
	}
	if acc := q.Get("acc"); acc != "" {
		kept := list[:0]
		for _, s := range list {
			if s.Account == acc {
				kept = append(kept, s)
			}
		}
		list = kept
		sz.NumSubs = uint32(len(list))
	}
	if !subs && q.Get("test") == "" && q.Get("acc") == "" {
		sz.Total = int(st.NumSubs)
		writeJSON(w, sz)
		return
	}
	slices.SortFunc(list, func(a, b SubDetail) int {
		if a.Cid != b.Cid {
			return cmpU(a.Cid, b.Cid)
		}
		return strings.Compare(a.Sid, b.Sid)
	})
	sz.Total = len(list)
	if subs {
		sz.Subs = page(list, sz.Offset, sz.Limit)
	}
	writeJSON(w, sz)
}

func (m *Monitor) jsz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var flags [4]bool
	for i, k := range []string{"accounts", "streams", "consumers", "config"} {
		var ok bool
		if flags[i], ok = decodeBool(w, q, k); !ok {
			return
		}
	}
	accounts, streams, consumers, config := flags[0], flags[1], flags[2], flags[3]
	acc := q.Get("acc")
	if acc != "" {
		accounts = true
	}
	if streams || consumers || config {
		accounts = true
	}
	v := m.src.Varz()
	info := &JSInfo{ID: v.ID, Now: time.Now().UTC()}
	detail := accounts && (streams || consumers || config)
	u := m.src.JetStream(detail && consumers, detail)
	if u == nil {
		info.Disabled = true
		writeJSON(w, info)
		return
	}
	info.JetStreamStats = u.Stats
	info.Config = u.Config
	info.Streams = len(u.Streams)
	for _, s := range u.Streams {
		info.Consumers += s.NumConsumers
		info.Messages += s.Msgs
		info.Bytes += s.Bytes
	}
	accs := u.Accounts
	if len(accs) == 0 {
		accs = []AccountJSUsage{{Name: GlobalAccount, Stats: u.Stats}}
	}
	for _, a := range accs {
		if !accounts || acc != "" && acc != a.Name {
			continue
		}
		d := &AccountDetail{Name: a.Name, ID: a.Name, JetStreamStats: a.Stats}
		for _, s := range u.Streams {
			if !(streams || consumers || config) || cmpOr(s.Account, GlobalAccount) != a.Name {
				continue
			}
			sd := s.Detail
			if !config {
				sd.Config = nil
			}
			if !consumers {
				sd.Consumer = nil
			}
			d.Streams = append(d.Streams, sd)
		}
		info.AccountDetails = append(info.AccountDetails, d)
	}
	info.Total = len(info.AccountDetails)
	writeJSON(w, info)
}

// GlobalAccount is the one account evnats has until accounts land.
const GlobalAccount = "$G"

func (m *Monitor) accountz(w http.ResponseWriter, r *http.Request) {
	v := m.src.Varz()
	az := &Accountz{ID: v.ID, Now: time.Now().UTC(), SystemAccount: v.SystemAccount}
	acc := r.URL.Query().Get("acc")
	if as, ok := m.src.(AccountSource); ok {
		if acc == "" {
			az.Accounts = as.AccountNames()
		} else if az.Account, ok = as.AccountInfo(acc); !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, "Error: account %q not found", acc)
			return
		}
		writeJSON(w, az)
		return
	}
	if acc == "" {
		az.Accounts = []string{GlobalAccount}
		writeJSON(w, az)
		return
	}
	if acc != GlobalAccount {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = fmt.Fprintf(w, "Error: account %q not found", acc)
		return
	}
	_, st := m.src.Subs()
	az.Account = &AccountInfo{AccountName: GlobalAccount, Complete: true, JetStream: v.JetStream.Config != nil,
		ClientCnt: v.Connections, SubCnt: st.NumSubs, Sublist: &st, LastUpdate: v.Start}
	writeJSON(w, az)
}

func (m *Monitor) accstatz(w http.ResponseWriter, r *http.Request) {
	v := m.src.Varz()
	sz := &AccountStatz{ID: v.ID, Now: time.Now().UTC(), Accounts: []*AccountStat{}}
	unused, ok := decodeBool(w, r.URL.Query(), "unused")
	if !ok {
		return
	}
	if as, ok := m.src.(AccountStatSource); ok {
		var only []string
		if a := r.URL.Query().Get("accounts"); a != "" {
			only = strings.Split(a, ",")
		}
		for _, st := range as.AccountStats() {
			if (only == nil || slices.Contains(only, st.Account)) && (st.Conns > 0 || unused) {
				sz.Accounts = append(sz.Accounts, st)
			}
		}
		writeJSON(w, sz)
		return
	}
	if acc := r.URL.Query().Get("accounts"); acc != "" && acc != GlobalAccount {
		writeJSON(w, sz)
		return
	}
	if v.Connections > 0 || unused {
		sz.Accounts = append(sz.Accounts, &AccountStat{Account: GlobalAccount, Name: GlobalAccount,
			Conns: v.Connections, TotalConns: v.Connections, NumSubs: v.Subscriptions,
			Sent:     MsgBytes{Msgs: v.OutMsgs, Bytes: v.OutBytes},
			Received: MsgBytes{Msgs: v.InMsgs, Bytes: v.InBytes}, SlowConsumers: v.SlowConsumers})
	}
	writeJSON(w, sz)
}

func (m *Monitor) healthz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for _, k := range []string{"js-enabled", "js-enabled-only", "js-server-only", "js-meta-only", "details"} {
		if _, ok := decodeBool(w, q, k); !ok {
			return
		}
	}
	// evnats is one server: with JetStream on, it is its own meta leader
	// and every stream is current, so each check passes once it is up.
	hs := &HealthStatus{Status: "ok"}
	code := http.StatusOK
	if (q.Get("stream") != "" || q.Get("consumer") != "") && q.Get("account") == "" {
		code, hs.Status = http.StatusBadRequest, "error"
		hs.Error = `"account" must not be empty when checking stream health`
	} else if q.Get("consumer") != "" && q.Get("stream") == "" {
		code, hs.Status = http.StatusBadRequest, "error"
		hs.Error = `"stream" must not be empty when checking consumer health`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(hs)
}

func (m *Monitor) loopz(w http.ResponseWriter, _ *http.Request) {
	v := m.src.Varz()
	lz := &Loopz{ID: v.ID, Now: time.Now().UTC(), IO: v.IO, Loops: m.src.Loops()}
	if lz.Loops == nil {
		lz.Loops = []LoopStat{}
	}
	writeJSON(w, lz)
}

func (m *Monitor) routez(w http.ResponseWriter, _ *http.Request) {
	v := m.src.Varz()
	writeJSON(w, &Routez{ID: v.ID, Name: v.Name, Now: time.Now().UTC(), Routes: []any{}})
}

func (m *Monitor) gatewayz(w http.ResponseWriter, _ *http.Request) {
	v := m.src.Varz()
	writeJSON(w, &Gatewayz{ID: v.ID, Now: time.Now().UTC(),
		OutboundGateways: map[string]any{}, InboundGateways: map[string][]any{}})
}

// leafz is /leafz: ?subs=1 lists each link's subscriptions, ?acc=NAME
// keeps that account's links only.
func (m *Monitor) leafz(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subs, ok := decodeBool(w, q, "subs")
	if !ok {
		return
	}
	ls := m.src.Leafs(subs, q.Get("acc"))
	if ls == nil {
		ls = []*LeafInfo{}
	}
	writeJSON(w, &Leafz{ID: m.src.Varz().ID, Now: time.Now().UTC(), NumLeafs: len(ls), Leafs: ls})
}

// jsonWriter is an indenting encoder with its buffer, kept in jsonPool so
// that a scrape reuses the buffers of the one before.
type jsonWriter struct {
	buf bytes.Buffer
	enc *json.Encoder // writes into buf
}

var jsonPool = sync.Pool{New: func() any {
	j := &jsonWriter{}
	j.enc = json.NewEncoder(&j.buf)
	j.enc.SetIndent("", "  ")
	return j
}}

func writeJSON(w http.ResponseWriter, v any) {
	j := jsonPool.Get().(*jsonWriter)
	j.buf.Reset()
	_ = j.enc.Encode(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(j.buf.Len()))
	_, _ = w.Write(j.buf.Bytes())
	if j.buf.Cap() <= 1<<20 { // a huge /connz is not kept
		jsonPool.Put(j)
	}
}

// badRequest answers as nats-server does for a malformed parameter.
func badRequest(w http.ResponseWriter, format string, args ...any) {
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintf(w, format, args...)
}

type query interface{ Get(string) string }

func decodeBool(w http.ResponseWriter, q query, k string) (bool, bool) {
	s := q.Get(k)
	if s == "" {
		return false, true
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		badRequest(w, "Error decoding boolean for '%s': %v", k, err)
		return false, false
	}
	return v, true
}

func decodeInt(w http.ResponseWriter, q query, k string) (int, bool) {
	s := q.Get(k)
	if s == "" {
		return 0, true
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		badRequest(w, "Error decoding int for '%s': %v", k, err)
		return 0, false
	}
	return v, true
}

func decodeUint(w http.ResponseWriter, q query, k string) (uint64, bool) {
	s := q.Get(k)
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		badRequest(w, "Error decoding uint64 for '%s': %v", k, err)
		return 0, false
	}
	return v, true
}

// decodeSubs reads subs=1|true|detail.
func decodeSubs(w http.ResponseWriter, q query) (subs, detail, ok bool) {
	if strings.EqualFold(q.Get("subs"), "detail") {
		return true, true, true
	}
	subs, ok = decodeBool(w, q, "subs")
	return subs, false, ok
}

func page[T any](list []T, offset, limit int) []T {
	if offset >= len(list) {
		return nil
	}
	list = list[offset:]
	if limit < len(list) {
		list = list[:limit]
	}
	return list
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// expvarz is expvar's document without its cmdline, which may hold a
// password or token given as a flag.
func expvarz(w http.ResponseWriter, _ *http.Request) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	writeJSON(w, map[string]any{"memstats": &ms, "goroutines": runtime.NumGoroutine(),
		"gomaxprocs": runtime.GOMAXPROCS(0), "num_cpu": runtime.NumCPU(), "go": runtime.Version()})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

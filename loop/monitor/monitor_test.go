package monitor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fakeSource is a Source with fixed figures.
type fakeSource struct {
	conns  []*ConnInfo
	closed []*ConnInfo
	subs   []SubDetail
}

func (f *fakeSource) Varz() *Varz { return &Varz{ID: "ID", Name: "n", Start: time.Now()} }
func (f *fakeSource) Conns(bool) []*ConnInfo {
	out := make([]*ConnInfo, len(f.conns))
	for i, c := range f.conns {
		cp := *c
		out[i] = &cp
	}
	return out
}
func (f *fakeSource) Closed() []*ConnInfo { return f.closed }
func (f *fakeSource) Subs() ([]SubDetail, SublistStats) {
	return f.subs, SublistStats{NumSubs: uint32(len(f.subs))}
}
func (f *fakeSource) JetStream(bool, bool) *JSUsage  { return nil }
func (f *fakeSource) Loops() []LoopStat              { return nil }
func (f *fakeSource) MQTT() (MQTTStat, bool)         { return MQTTStat{}, false }
func (f *fakeSource) Leafs(bool, string) []*LeafInfo { return nil }

func get(t *testing.T, m *Monitor, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	m.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w.Code, w.Body.String()
}

func connz(t *testing.T, m *Monitor, path string) *Connz {
	t.Helper()
	code, body := get(t, m, path)
	if code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, code, body)
	}
	var cz Connz
	if err := json.Unmarshal([]byte(body), &cz); err != nil {
		t.Fatal(err)
	}
	return &cz
}

func cids(cz *Connz) []uint64 {
	var out []uint64
	for _, c := range cz.Conns {
		out = append(out, c.Cid)
	}
	return out
}

// TestConnzSortPage: every sort key orders as nats-server's (descending
// figures, ascending cid and start), ties by cid; offset and limit page.
func TestConnzSortPage(t *testing.T) {
	t0 := time.Now().Add(-time.Hour)
	src := &fakeSource{conns: []*ConnInfo{
		{Cid: 3, Start: t0.Add(1 * time.Second), LastActivity: t0.Add(30 * time.Minute), InMsgs: 5, OutBytes: 10, NumSubs: 1, Pending: 7, RTTDur: time.Millisecond},
		{Cid: 1, Start: t0.Add(2 * time.Second), LastActivity: t0.Add(50 * time.Minute), InMsgs: 9, OutBytes: 1, NumSubs: 3, RTTDur: 3 * time.Millisecond},
		{Cid: 2, Start: t0.Add(3 * time.Second), LastActivity: t0.Add(10 * time.Minute), InMsgs: 1, OutBytes: 5, NumSubs: 3, Pending: 9},
	}}
	m := New(src)
	for _, tc := range []struct {
		q    string
		want string
	}{
		{"", "[1 2 3]"},
		{"?sort=start", "[3 1 2]"},
		{"?sort=msgs_from", "[1 3 2]"},
		{"?sort=bytes_to", "[3 2 1]"},
		{"?sort=subs", "[1 2 3]"},
		{"?sort=pending", "[2 3 1]"},
		{"?sort=last", "[1 3 2]"},
		{"?sort=idle", "[2 3 1]"},
		{"?sort=uptime", "[3 1 2]"},
		{"?sort=rtt", "[1 3 2]"},
		{"?sort=msgs_from&offset=1&limit=1", "[3]"},
		{"?offset=5", "[]"},
		{"?cid=2", "[2]"},
	} {
		got := fmt.Sprint(cids(connz(t, m, "/connz"+tc.q)))
		if got != tc.want {
			t.Errorf("/connz%s: %s, want %s", tc.q, got, tc.want)
		}
	}
	if cz := connz(t, m, "/connz?limit=2"); cz.Total != 3 || cz.NumConns != 2 || cz.Limit != 2 {
		t.Errorf("limit=2: total %d num %d limit %d", cz.Total, cz.NumConns, cz.Limit)
	}
	for _, q := range []string{"?sort=x", "?sort=stop", "?sort=reason&state=all", "?limit=x", "?subs=x", "?state=gone", "?cid=-1"} {
		if code, _ := get(t, m, "/connz"+q); code != http.StatusBadRequest {
			t.Errorf("/connz%s: %d, want 400", q, code)
		}
	}
}

// TestFmtDur: nats-server's uptime spelling.
func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 999 * time.Millisecond: "0s", 61 * time.Second: "1m1s", 3723 * time.Second: "1h2m3s",
		26*time.Hour + 5*time.Second: "1d2h0m5s", -time.Second: "0s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestSubszTest: test= keeps the subscriptions a subject would reach and
// refuses a subject one cannot publish to.
func TestSubszTest(t *testing.T) {
	m := New(&fakeSource{subs: []SubDetail{{Subject: "a.>", Sid: "1", Cid: 1}, {Subject: "a.b", Sid: "2", Cid: 1}, {Subject: "c", Sid: "1", Cid: 2}}})
	code, body := get(t, m, "/subsz?subs=1&test=a.b")
	var sz Subsz
	if err := json.Unmarshal([]byte(body), &sz); code != 200 || err != nil || sz.Total != 2 || len(sz.Subs) != 2 || sz.NumSubs != 3 {
		t.Fatalf("test=a.b: %d %s", code, body)
	}
	if code, _ := get(t, m, "/subsz?test=a.*"); code != http.StatusBadRequest {
		t.Errorf("test=a.*: %d", code)
	}
}

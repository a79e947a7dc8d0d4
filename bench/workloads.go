package main

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// window records the measured interval and the server's CPU time over it.
type window struct {
	pid        int
	start, end time.Time
	cpu0, cpu1 int64
}

func (w *window) Start() { w.cpu0 = cpuNanos(w.pid); w.start = time.Now() }
func (w *window) Stop()  { w.end = time.Now(); w.cpu1 = cpuNanos(w.pid) }

// sample is one run of one row against one server.
type sample struct {
	Msgs    int64 // messages published in the window
	Bytes   int64 // payload bytes published
	Dur     time.Duration
	CPU     time.Duration
	Lat     latencies // request/reply only
	Rate    float64   // msgs/s as the client tool reported it (natscli rows); 0: Msgs/Dur
	Failure string
}

func (s sample) MsgsPerSec() float64 {
	if s.Rate > 0 {
		return s.Rate
	}
	return float64(s.Msgs) / s.Dur.Seconds()
}

func (s sample) MBPerSec() float64 {
	if s.Rate > 0 && s.Msgs > 0 {
		return s.Rate * float64(s.Bytes) / float64(s.Msgs) / 1e6
	}
	return float64(s.Bytes) / s.Dur.Seconds() / 1e6
}
func (s sample) CPUPerMsg() float64 { return float64(s.CPU.Nanoseconds()) / float64(s.Msgs) }

// row is one benchmark scenario.
type row struct {
	Name    string
	Payload int
	N       int // messages per run (full mode)
	Kind    string
	Pubs    int
	Subs    int
	ReqRep  bool
	JS      string      // "memory" or "file": a JetStream publish row
	Async   bool        // JetStream: pipelined publishes
	Consume string      // JetStream: "ordered", "consume" or "fetch" reads a prefilled stream
	MQTT    string      // "qos0", "qos1", "nats" (NATS -> MQTT) or "sessions"
	Stalled bool        // core: a raw subscriber on the subject never reads
	TLS     bool        // clients connect with TLS (tls:// and the bench CA)
	WS      bool        // clients connect over WebSocket (ws://, websocket { no_tls: true })
	CLI     *natscliRow // measured by natscli's `nats bench` (JS says the storage)
	Connect bool        // N connections made and closed (TLS: full handshakes); msgs/s is connections/s
	Leaf    bool        // the server is a leaf of a nats-server hub: publishers on it, subscribers on the hub
}

// target is where a row's clients connect.
type target struct {
	URL  string // nats://
	MQTT string // host:port of the MQTT listener, for MQTT rows
	WS   string // host:port of the WebSocket listener, for WebSocket rows
	Sub  string // nats:// of the server subscribers use when not URL (leaf rows: the hub)
}

var rows = []row{
	{Name: "pub-only 16B", Payload: 16, N: 4_000_000, Kind: "core", Pubs: 1},
	{Name: "pub-only 128B", Payload: 128, N: 3_000_000, Kind: "core", Pubs: 1},
	{Name: "pub/sub 1:1 16B", Payload: 16, N: 2_000_000, Kind: "core", Pubs: 1, Subs: 1},
	{Name: "TLS pub-only 128B", Payload: 128, N: 2_000_000, Kind: "core", Pubs: 1, TLS: true},
	{Name: "TLS pub/sub 1:1 128B", Payload: 128, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 1, TLS: true},
	{Name: "WebSocket pub-only 128B", Payload: 128, N: 2_000_000, Kind: "core", Pubs: 1, WS: true},
	{Name: "WebSocket pub/sub 1:1 128B", Payload: 128, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 1, WS: true},
	{Name: "TLS handshakes (connections/s)", N: 3_000, Kind: "core", TLS: true, Connect: true},
	{Name: "pub/sub 1:1 16KiB", Payload: 16 << 10, N: 100_000, Kind: "core", Pubs: 1, Subs: 1},
	{Name: "pub/sub 1:1 512B", Payload: 512, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 1},
	{Name: "pub/sub 1:1 512B + stalled sub", Payload: 512, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 1, Stalled: true},
	{Name: "fan-out 1:4 128B", Payload: 128, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 4},
	{Name: "4x4 128B", Payload: 128, N: 1_000_000, Kind: "core", Pubs: 4, Subs: 4},
	{Name: "leaf -> hub pub/sub 1:1 128B", Payload: 128, N: 1_000_000, Kind: "core", Pubs: 1, Subs: 1, Leaf: true},
	{Name: "req/rep 1:1 128B", Payload: 128, N: 50_000, Kind: "core", Pubs: 1, Subs: 1, ReqRep: true},
	{Name: "req/rep 10c:2q 16B", Payload: 16, N: 100_000, Kind: "core", Pubs: 10, Subs: 2, ReqRep: true},
	{Name: "JetStream sync publish 16B memory", Payload: 16, N: 20_000, Kind: "js", JS: "memory"},
	{Name: "JetStream async publish 128B file", Payload: 128, N: 200_000, Kind: "js", JS: "file", Async: true},
	{Name: "JetStream ordered consumer 128B file", Payload: 128, N: 100_000, Kind: "js", JS: "file", Consume: "ordered"},
	{Name: "JetStream durable consume 128B file", Payload: 128, N: 100_000, Kind: "js", JS: "file", Consume: "consume"},
	{Name: "JetStream durable fetch 128B file", Payload: 128, N: 100_000, Kind: "js", JS: "file", Consume: "fetch"},
	{Name: "natscli js pub sync 16B memory", Payload: 16, N: 20_000, Kind: "natscli", JS: "memory", CLI: &natscliRow{
		Setup:   [][]string{natscliStream("memory")},
		Measure: []string{"bench", "js", "--no-progress", "pub", "sync", "bench.js", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli js pub async 128B file", Payload: 128, N: 200_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Setup:   [][]string{natscliStream("file")},
		Measure: []string{"bench", "js", "--no-progress", "pub", "async", "bench.js", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli js ordered 128B file", Payload: 128, N: 100_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Setup:   natscliFill,
		Measure: []string{"bench", "js", "--no-progress", "ordered", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli js consume 128B file", Payload: 128, N: 100_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Setup:   natscliFill,
		Measure: []string{"bench", "js", "--no-progress", "consume", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli js fetch 128B file", Payload: 128, N: 100_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Setup:   natscliFill,
		Measure: []string{"bench", "js", "--no-progress", "fetch", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli kv put 128B file", Payload: 128, N: 20_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Measure: []string{"bench", "kv", "--no-progress", "put", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "natscli kv get 128B file", Payload: 128, N: 20_000, Kind: "natscli", JS: "file", CLI: &natscliRow{
		Setup:   [][]string{{"bench", "kv", "--no-progress", "put", "--msgs", "N", "--size", "SIZE"}},
		Measure: []string{"bench", "kv", "--no-progress", "get", "--msgs", "N", "--size", "SIZE"}}},
	{Name: "MQTT pub/sub 128B QoS 0", Payload: 128, N: 300_000, Kind: "mqtt", MQTT: "qos0"},
	{Name: "MQTT pub/sub 128B QoS 1", Payload: 128, N: 100_000, Kind: "mqtt", MQTT: "qos1"},
	{Name: "NATS -> MQTT 128B", Payload: 128, N: 300_000, Kind: "mqtt", MQTT: "nats"},
	{Name: "MQTT session setup QoS 1", N: 10_000, Kind: "mqtt", MQTT: "sessions"},
	{Name: "MQTT fan-out 1:100 128B QoS 0", Payload: 128, N: 20_000, Kind: "mqtt", MQTT: "fanout", Subs: 100},
	{Name: "MQTT shared sub 1:4 128B QoS 1", Payload: 128, N: 100_000, Kind: "mqtt", MQTT: "shared", Subs: 4},
	{Name: "MQTT 5 pub/sub 128B QoS 0", Payload: 128, N: 300_000, Kind: "mqtt", MQTT: "v5qos0"},
	{Name: "MQTT 5 pub/sub 128B QoS 1", Payload: 128, N: 100_000, Kind: "mqtt", MQTT: "v5qos1"},
}

// natscliStream creates natscli's bench stream with `nats stream add`, as
// a user would before `nats bench js pub` without --create (rows made when
// --create, whose stream asks for allow_atomic and allow_batched, was
// refused by evnats; both are implemented now).
func natscliStream(storage string) []string {
	return []string{"stream", "add", "benchstream", "--subjects", "bench.js", "--storage", storage, "--defaults"}
}

// natscliFill creates the stream and publishes a consumer row's messages
// before its window.
var natscliFill = [][]string{natscliStream("file"), {"bench", "js", "--no-progress", "pub", "async", "bench.js", "--msgs", "N", "--size", "SIZE"}}

// Rows for capabilities evnats does not have yet; printed as n/a.
var pendingRows = []string{}

func runRow(r row, tg target, w *window, n int) (sample, error) {
	url := tg.URL
	if r.MQTT != "" {
		return runMQTT(r, tg, w, n)
	}
	if r.CLI != nil {
		return runNatscli(r, url, w, n)
	}
	if r.JS != "" {
		return runJS(r, url, w, n)
	}
	if r.ReqRep {
		return runReqRep(r, url, w, n)
	}
	if r.Connect {
		return runConnect(url, w, n)
	}
	sub := tg.Sub
	if sub == "" {
		sub = url
	}
	return runPubSub(r, url, sub, w, n)
}

// runConnect makes n client connections, connectConcurrency at a time,
// each a full nats.go connect (with tls://, a TLS handshake, no session
// resumption) through its first PING/PONG, then closed.
func runConnect(url string, w *window, n int) (sample, error) {
	const connectConcurrency = 16
	var next atomic.Int64
	errs := make(chan error, connectConcurrency)
	w.Start()
	for range connectConcurrency {
		go func() {
			for next.Add(1) <= int64(n) {
				nc, err := dial(url)
				if err == nil {
					err = nc.Flush()
					nc.Close()
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	var first error
	for range connectConcurrency {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	w.Stop()
	if first != nil {
		return sample{}, first
	}
	return sample{Msgs: int64(n)}, nil
}

// rootCA is the CA file that signs the servers' certificate in TLS rows
// (benchTLS), trusted by every tls:// connection.
var rootCA string

func dial(url string) (*nats.Conn, error) {
	opts := []nats.Option{nats.NoReconnect(), nats.Timeout(5 * time.Second), nats.ReconnectBufSize(-1)}
	if strings.HasPrefix(url, "tls://") {
		opts = append(opts, nats.RootCAs(rootCA))
	}
	return nats.Connect(url, opts...)
}

// runPubSub publishes n messages from r.Pubs connections and waits until each
// of r.Subs subscribers has received all of them. Publishers keep at most
// lagBytes of payload ahead of the slowest subscriber, the same for every
// server, so no server is pushed into slow-consumer cut-offs.
func runPubSub(r row, url, subURL string, w *window, n int) (sample, error) {
	const subject = "bench.subject"
	const lagBytes = 16 << 20
	maxLag := int64(max(lagBytes/r.Payload, 64))
	step := int(min(max(maxLag/4, 16), 1000))
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if r.Stalled {
		nc, err := stalledSubscriber(url, subject)
		if err != nil {
			return sample{}, err
		}
		defer nc.Close()
	}
	perPub := n / r.Pubs
	total := int64(perPub * r.Pubs)
	counts := make([]atomic.Int64, r.Subs)
	done := make(chan struct{}, r.Subs)
	for i := 0; i < r.Subs; i++ {
		nc, err := dial(subURL)
		if err != nil {
			return sample{}, err
		}
		conns = append(conns, nc)
		i := i
		sub, err := nc.Subscribe(subject, func(*nats.Msg) {
			if counts[i].Add(1) == total {
				done <- struct{}{}
			}
		})
		if err != nil {
			return sample{}, err
		}
		_ = sub.SetPendingLimits(-1, -1)
		if err := nc.Flush(); err != nil {
			return sample{}, err
		}
	}
	minCount := func() int64 {
		m := total
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	pubs := make([]*nats.Conn, r.Pubs)
	for i := range pubs {
		nc, err := dial(url)
		if err != nil {
			return sample{}, err
		}
		conns = append(conns, nc)
		pubs[i] = nc
	}
	if subURL != url && r.Subs > 0 {
		// The publishers' server learns the subscribers' interest over a
		// link: wait until a probe subscribed after them answers there
		// (interest arrives in order, so theirs is in place too).
		if _, err := conns[0].Subscribe("bench.probe", func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
			return sample{}, err
		}
		if err := conns[0].Flush(); err != nil {
			return sample{}, err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := pubs[0].Request("bench.probe", nil, 200*time.Millisecond); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return sample{}, fmt.Errorf("no interest across the link")
			}
		}
	}
	payload := make([]byte, r.Payload)
	var published atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, r.Pubs)
	w.Start()
	for _, nc := range pubs {
		wg.Add(1)
		go func(nc *nats.Conn) {
			defer wg.Done()
			for i := 0; i < perPub; i++ {
				if err := nc.Publish(subject, payload); err != nil {
					errs <- err
					return
				}
				if i%step == step-1 && r.Subs > 0 {
					p := published.Add(int64(step))
					last, since := minCount(), time.Now()
					for m := last; p-m > maxLag; m = minCount() {
						if m != last {
							last, since = m, time.Now()
						} else if time.Since(since) > 30*time.Second {
							// a subscriber lost its connection (or the
							// server its messages): fail the run, not hang
							errs <- fmt.Errorf("subscribers stalled at %d of %d messages", m, total)
							return
						}
						time.Sleep(20 * time.Microsecond)
					}
				}
			}
			if err := nc.Flush(); err != nil {
				errs <- err
			}
		}(nc)
	}
	wg.Wait()
	select {
	case err := <-errs:
		return sample{}, err
	default:
	}
	timeout := time.After(60 * time.Second)
	for i := 0; i < r.Subs; i++ {
		select {
		case <-done:
		case <-timeout:
			return sample{}, fmt.Errorf("subscribers got %d of %d", minCount(), total)
		}
	}
	w.Stop()
	return sample{Msgs: total, Bytes: total * int64(r.Payload)}, nil
}

// runReqRep sends n requests from r.Pubs clients (each waiting for its reply
// before the next) to r.Subs services in one queue group.
func runReqRep(r row, url string, w *window, n int) (sample, error) {
	const subject = "bench.service"
	var conns []*nats.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < r.Subs; i++ {
		nc, err := dial(url)
		if err != nil {
			return sample{}, err
		}
		conns = append(conns, nc)
		if _, err := nc.QueueSubscribe(subject, "svc", func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
			return sample{}, err
		}
		if err := nc.Flush(); err != nil {
			return sample{}, err
		}
	}
	clients := make([]*nats.Conn, r.Pubs)
	for i := range clients {
		nc, err := dial(url)
		if err != nil {
			return sample{}, err
		}
		conns = append(conns, nc)
		clients[i] = nc
		if _, err := nc.Request(subject, []byte("warm"), 5*time.Second); err != nil {
			return sample{}, err
		}
	}
	per := n / r.Pubs
	lats := make([][]time.Duration, r.Pubs)
	payload := make([]byte, r.Payload)
	var wg sync.WaitGroup
	errs := make(chan error, r.Pubs)
	w.Start()
	for i, nc := range clients {
		wg.Add(1)
		go func(i int, nc *nats.Conn) {
			defer wg.Done()
			l := make([]time.Duration, 0, per)
			for j := 0; j < per; j++ {
				t0 := time.Now()
				if _, err := nc.Request(subject, payload, 5*time.Second); err != nil {
					errs <- err
					return
				}
				l = append(l, time.Since(t0))
			}
			lats[i] = l
		}(i, nc)
	}
	wg.Wait()
	w.Stop()
	select {
	case err := <-errs:
		return sample{}, err
	default:
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	total := int64(per * r.Pubs)
	return sample{Msgs: total, Bytes: total * int64(r.Payload), Lat: percentiles(all)}, nil
}

// latencies are request/reply round-trip percentiles of one run.
type latencies struct{ P50, P90, P99, P999 time.Duration }

// percentiles sorts ds and reads the nearest-rank percentiles.
func percentiles(ds []time.Duration) latencies {
	if len(ds) == 0 {
		return latencies{}
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return latencies{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999)}
}

// stalledSubscriber subscribes a raw connection to subject that never reads
// again (a consumer that hung): the server must not let it hold the
// publisher or the healthy subscribers back.
func stalledSubscriber(url, subject string) (net.Conn, error) {
	nc, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(nc, "CONNECT {\"verbose\":false}\r\nSUB %s 1\r\nPING\r\n", subject); err != nil {
		nc.Close()
		return nil, err
	}
	r := bufio.NewReader(nc)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, err
		}
		if strings.HasPrefix(line, "PONG") {
			return nc, nil
		}
	}
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	_ "github.com/evnats/evnats/mqtt" // serves the MQTT listener (loop.RegisterMQTT)
)

// TestRowsSmoke runs every row briefly against an in-process evnats so the
// harness cannot rot between full benchmark runs. It checks the harness, not
// speed: every message must arrive and every figure be positive.
func TestRowsSmoke(t *testing.T) {
	s := looptest.Start(t, loop.Options{MQTTPort: -1, Loops: 2, JetStream: true})
	f, err := benchTLS()
	if err != nil {
		t.Fatal(err)
	}
	ts := looptest.Start(t, loop.Options{Loops: 2, TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}})
	ws := looptest.Start(t, loop.Options{Loops: 2, Websocket: loop.WebsocketOptions{Port: -1, NoTLS: true}})
	for _, r := range rows {
		t.Run(r.Name, func(t *testing.T) {
			w := &window{}
			tg := target{URL: s.ClientURL(), MQTT: s.MQTTAddr().String()}
			if r.TLS {
				tg = target{URL: "tls://" + ts.Addr().String()}
			}
			if r.WS {
				tg = target{URL: "ws://" + ws.WebsocketAddr().String()}
			}
			smp, err := runRow(r, tg, w, 2000)
			if err != nil {
				t.Fatal(err)
			}
			smp.Dur = w.end.Sub(w.start)
			if smp.Msgs < 1000 || smp.Dur <= 0 || smp.MsgsPerSec() <= 0 {
				t.Fatalf("sample %+v", smp)
			}
			if l := smp.Lat; r.ReqRep && (l.P50 <= 0 || l.P90 < l.P50 || l.P99 < l.P90 || l.P999 < l.P99) {
				t.Fatalf("latencies %+v", l)
			}
		})
	}
}

func TestPercentiles(t *testing.T) {
	ds := make([]time.Duration, 1000)
	for i := range ds {
		ds[i] = time.Duration(1000-i) * time.Microsecond // 1..1000 µs, reversed
	}
	l := percentiles(ds)
	want := latencies{P50: 500 * time.Microsecond, P90: 900 * time.Microsecond, P99: 990 * time.Microsecond, P999: 999 * time.Microsecond}
	if l != want {
		t.Fatalf("percentiles %+v, want %+v", l, want)
	}
}

func TestReportRendersEveryRow(t *testing.T) {
	servers := []serverKind{{Name: "evnats"}, {Name: "nats-server"}}
	res := results{}
	for _, r := range rows {
		res[r.Name] = map[string][]sample{
			"evnats":      {{Msgs: 2000, Bytes: 1, Dur: 1e9, CPU: 1e6}},
			"nats-server": {{Msgs: 1000, Bytes: 1, Dur: 1e9, CPU: 2e6}},
		}
	}
	md := renderMarkdown(servers, rows, res, 1, "test machine")
	for _, r := range rows {
		if !strings.Contains(md, "| "+r.Name+" |") {
			t.Errorf("row %q missing", r.Name)
		}
	}
	if !strings.Contains(md, "**2.00x**") || !strings.Contains(md, "| 0.25 |") {
		t.Errorf("ratios wrong:\n%s", md)
	}
	if !strings.Contains(md, "| req/rep 1:1 128B latency | evnats |") {
		t.Errorf("latency row missing:\n%s", md)
	}
	if svg := ratioSVG("t", []bar{{"a", 2}, {"b", 0.5}}); !strings.Contains(svg, "2.00x") || !strings.Contains(svg, "</svg>") {
		t.Errorf("svg:\n%s", svg)
	}
}

// TestConsumerRowsMeasureNoWait runs each JetStream consumer row over a
// message count that is not a multiple of any batch size: the timed window
// must hold the deliveries only, never a fetch left waiting out its expiry
// for messages the stream does not have (which made every server read
// ~395 msgs/s in bench-quick).
func TestConsumerRowsMeasureNoWait(t *testing.T) {
	s := looptest.Start(t, loop.Options{Loops: 2, JetStream: true})
	const n = 1100
	const idle = 5 * time.Second // the expiry the rows give a fetch
	if fetchSize(100) != 100 || fetchSize(1000) != 256 {
		t.Fatalf("fetchSize asks for more than remains: %d, %d", fetchSize(100), fetchSize(1000))
	}
	found := 0
	for _, r := range rows {
		if r.Consume == "" {
			continue
		}
		found++
		t.Run(r.Name, func(t *testing.T) {
			w := &window{}
			if _, err := runRow(r, target{URL: s.ClientURL()}, w, n); err != nil {
				t.Fatal(err)
			}
			if d := w.end.Sub(w.start); d <= 0 || d >= idle/2 {
				t.Fatalf("timed window %v for %d messages: it holds an idle wait", d, n)
			}
		})
	}
	if found < 3 {
		t.Fatalf("%d consumer rows, want ordered, consume and fetch", found)
	}
}

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	_ "github.com/evnats/evnats/loop/leaf" // leaf links (loop.RegisterLeaf)
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
	t.Cleanup(removeBenchTLS) // after the servers below stop (cleanups run last first)
	ts := looptest.Start(t, loop.Options{Loops: 2, TLS: &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}})
	ws := looptest.Start(t, loop.Options{Loops: 2, Websocket: loop.WebsocketOptions{Port: -1, NoTLS: true}})
	hub := looptest.Start(t, loop.Options{Loops: 2, LeafHost: "127.0.0.1", LeafPort: -1})
	leaf := looptest.Start(t, loop.Options{Loops: 2, LeafRemotes: []loop.LeafRemote{{URLs: []string{"nats-leaf://" + hub.LeafAddr().String()}}}})
	natscliBin = testNatscli(t)
	for _, r := range rows {
		t.Run(r.Name, func(t *testing.T) {
			if r.CLI != nil && natscliBin == "" {
				t.Skip("natscli " + natscliVersion + " not in bin/ (make bench-quick builds it)")
			}
			w := &window{}
			tg := target{URL: s.ClientURL(), MQTT: s.MQTTAddr().String()}
			if r.TLS {
				tg = target{URL: "tls://" + ts.Addr().String()}
			}
			if r.WS {
				tg = target{URL: "ws://" + ws.WebsocketAddr().String()}
			}
			if r.Leaf {
				tg = target{URL: leaf.ClientURL(), Sub: hub.ClientURL()}
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
	if svg := ratioSVG("t", nil, []bar{{"a", 2}, {"b", 0.5}}); !strings.Contains(svg, "2.00x") || !strings.Contains(svg, "</svg>") {
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

// testNatscli is bin/nats when a bench run has built it; building it here
// would take minutes.
func testNatscli(t *testing.T) string {
	b, err := filepath.Abs(filepath.Join("..", "bin", "nats"))
	if err != nil || !natscliHasVersion(b) {
		return ""
	}
	return b
}

func TestParseNatscliRate(t *testing.T) {
	out := "16:04:03 Starting JetStream ordered ephemeral consumer benchmark [clients=1]\n\n" +
		"NATS JetStream ordered ephemeral consumer stats: 98,011 msgs/sec ~ 12 MiB/sec\n"
	if r, err := parseNatscliRate(out); err != nil || r != 98011 {
		t.Fatalf("rate %v, %v", r, err)
	}
	if _, err := parseNatscliRate("nats: error: stream not found\n"); err == nil {
		t.Fatal("no error for output without a rate")
	}
}

// TestNatscliRowsSkipWithReason: without natscli the other rows still run
// and the report says which were left out and why.
func TestNatscliRowsSkipWithReason(t *testing.T) {
	defer func(n []string) { reportNotes = n }(reportNotes)
	keep := prepareNatscli(rows, filepath.Join(t.TempDir(), "no-such-nats"), "bin", false)
	clis := 0
	for _, r := range rows {
		if r.CLI != nil {
			clis++
		}
	}
	if clis < 7 || len(keep) != len(rows)-clis {
		t.Fatalf("kept %d of %d rows with %d natscli rows", len(keep), len(rows), clis)
	}
	for _, r := range keep {
		if r.CLI != nil {
			t.Fatalf("kept natscli row %q", r.Name)
		}
	}
	md := renderMarkdown([]serverKind{{Name: "evnats"}}, keep, results{}, 1, "m")
	if !strings.Contains(md, "natscli rows skipped (7)") || !strings.Contains(md, "is not natscli") {
		t.Fatalf("report does not say why:\n%s", md)
	}
}

// TestRatioChart: every label and value lies inside the image, an off-scale
// ratio gets a capped bar with its value printed, the axis is logarithmic
// and the caption carries date, machine and command.
func TestRatioChart(t *testing.T) {
	long := "JetStream ordered consumer 128B file, a long label"
	svg := ratioSVG("title", []string{"Medians, 2026-12-02, AMD EPYC, 2 CPUs.", "Command: go run ./bench -rows JetStream"},
		[]bar{{long, 1.5}, {"MQTT session setup QoS 1", 10.06}, {"slow", 0.5}, {"even", 2}})
	var width float64
	fmt.Sscanf(svg[strings.Index(svg, `width="`):], `width="%g"`, &width)
	for _, el := range strings.Split(svg, "<text ")[1:] {
		var x float64
		fmt.Sscanf(el, `x="%g"`, &x)
		text := el[strings.Index(el, ">")+1 : strings.Index(el, "</text>")]
		w := float64(len(text)) * charW
		lo, hi := x, x+w
		switch {
		case strings.Contains(el, `text-anchor="end"`):
			lo, hi = x-w, x
		case strings.Contains(el, `text-anchor="middle"`):
			lo, hi = x-w/2, x+w/2
		}
		if lo < 0 || hi > width {
			t.Errorf("text %q spans %.0f..%.0f outside 0..%.0f", text, lo, hi, width)
		}
	}
	for _, want := range []string{"10.06x (cut)", ">8x<", ">0.5x<", ">1x<", "2026-12-02", "AMD EPYC", "go run ./bench -rows JetStream"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q:\n%s", want, svg)
		}
	}
	// log scale: 2x and 0.5x bars are equally long
	var w2, w05 float64
	for _, el := range strings.Split(svg, "<rect ")[2:] {
		var x, y, w float64
		fmt.Sscanf(el, `x="%g" y="%g" width="%g"`, &x, &y, &w)
		switch y {
		case top + 3*rowH + 2:
			w2 = w
		case top + 2*rowH + 2:
			w05 = w
		}
	}
	if w2 == 0 || w2 != w05 {
		t.Errorf("2x bar %.1f px, 0.5x bar %.1f px: not a log scale", w2, w05)
	}
}

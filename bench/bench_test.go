package main

import (
	"strings"
	"testing"

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
			if r.ReqRep && (smp.P50 <= 0 || smp.P99 < smp.P50) {
				t.Fatalf("latencies p50 %v p99 %v", smp.P50, smp.P99)
			}
		})
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
	if svg := ratioSVG("t", []bar{{"a", 2}, {"b", 0.5}}); !strings.Contains(svg, "2.00x") || !strings.Contains(svg, "</svg>") {
		t.Errorf("svg:\n%s", svg)
	}
}

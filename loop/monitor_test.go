package loop_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/monitor"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// monGet fetches a monitoring path and returns the status and body.
func monGet(t *testing.T, s *loop.Server, path string) (int, []byte) {
	t.Helper()
	cl := &http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + s.MonitorAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// monJSON fetches path and decodes it into v (a nats-server struct),
// failing unless the status is 200.
func monJSON(t *testing.T, s *loop.Server, path string, v any) {
	t.Helper()
	code, b := monGet(t, s, path)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d: %s", path, code, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v in %s", path, err, b)
	}
}

// eventually retries check until it returns "" or 5 s pass.
func eventually(t *testing.T, check func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func connByName(cz *server.Connz, name string) *server.ConnInfo {
	for _, c := range cz.Conns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TestMonitorTraffic checks /varz, /connz, /subsz and /metrics against
// known traffic, parsed into nats-server's own structs.
func TestMonitorTraffic(t *testing.T) {
	eachTransport(t, loop.Options{HTTPPort: -1, MaxClosedClients: 3}, func(t *testing.T, s *loop.Server) {
		pub := connect(t, s, nats.Name("pub"))
		sub := connect(t, s, nats.Name("sub"))
		got := make(chan *nats.Msg, 100)
		if _, err := sub.ChanSubscribe("foo", got); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.QueueSubscribe("bar.*", "q", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		if err := sub.Flush(); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			if err := pub.Publish("foo", []byte("hello")); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
		for range 10 {
			select {
			case <-got:
			case <-time.After(5 * time.Second):
				t.Fatal("messages not delivered")
			}
		}

		var v server.Varz
		monJSON(t, s, "/varz", &v)
		if v.InMsgs != 10 || v.InBytes != 50 || v.OutMsgs != 10 || v.OutBytes != 50 {
			t.Errorf("varz in %d/%d out %d/%d, want 10/50 10/50", v.InMsgs, v.InBytes, v.OutMsgs, v.OutBytes)
		}
		if v.Connections != 2 || v.TotalConnections != 2 || v.Subscriptions != 2 {
			t.Errorf("varz connections %d total %d subs %d", v.Connections, v.TotalConnections, v.Subscriptions)
		}
		if v.MaxConn != loop.DefaultMaxConnections || v.MaxPayload != loop.DefaultMaxPayload || v.CPU < 0 ||
			v.Mem <= 0 || v.Uptime == "" || v.Now.IsZero() || v.ConfigLoadTime.IsZero() || v.Routes != 0 || v.Leafs != 0 {
			t.Errorf("varz limits or process figures: %+v", v)
		}
		if v.SlowConsumersStats == nil || v.StaleConnectionStats == nil {
			t.Errorf("varz without slow_consumer_stats or stale_connection_stats")
		}
		if v.HTTPReqStats["/varz"] == 0 {
			t.Errorf("http_req_stats %v", v.HTTPReqStats)
		}

		var cz server.Connz
		monJSON(t, s, "/connz?subs=1", &cz)
		if cz.NumConns != 2 || cz.Total != 2 || cz.Limit != 1024 || len(cz.Conns) != 2 {
			t.Fatalf("connz %d/%d limit %d", cz.NumConns, cz.Total, cz.Limit)
		}
		ps, ss := connByName(&cz, "pub"), connByName(&cz, "sub")
		if ps == nil || ss == nil {
			t.Fatalf("connz names: %+v", cz.Conns)
		}
		if ps.InMsgs != 10 || ps.InBytes != 50 || ps.OutMsgs != 0 || ps.Lang != "go" || ps.Version == "" {
			t.Errorf("pub conn %+v", ps)
		}
		if ss.OutMsgs != 10 || ss.OutBytes != 50 || ss.NumSubs != 2 || !slices.Equal(ss.Subs, []string{"bar.*", "foo"}) {
			t.Errorf("sub conn %+v", ss)
		}
		if ss.Start.IsZero() || ss.LastActivity.Before(ss.Start) || ss.Uptime == "" || ss.Idle == "" || ss.IP != "127.0.0.1" || ss.Port == 0 {
			t.Errorf("sub conn times/addr %+v", ss)
		}

		var one server.Connz
		monJSON(t, s, "/connz?sort=msgs_to&limit=1", &one)
		if len(one.Conns) != 1 || one.Conns[0].Cid != ss.Cid || one.Total != 2 {
			t.Errorf("sort=msgs_to&limit=1: %+v", one.Conns)
		}
		monJSON(t, s, "/connz?sort=bytes_from&offset=1", &one)
		if len(one.Conns) != 1 || one.Conns[0].Cid != ss.Cid {
			t.Errorf("sort=bytes_from&offset=1: %+v", one.Conns)
		}
		monJSON(t, s, fmt.Sprintf("/connz?cid=%d&subs=detail", ss.Cid), &one)
		if len(one.Conns) != 1 || len(one.Conns[0].SubsDetail) != 2 || one.Conns[0].SubsDetail[1].Subject != "foo" ||
			one.Conns[0].SubsDetail[1].Msgs != 10 || one.Conns[0].SubsDetail[0].Queue != "q" {
			t.Errorf("cid&subs=detail: %+v", one.Conns)
		}
		for _, srt := range []string{"cid", "start", "subs", "pending", "msgs_to", "msgs_from", "bytes_to", "bytes_from", "last", "idle", "uptime", "rtt"} {
			monJSON(t, s, "/connz?sort="+srt, &one)
			if one.Total != 2 {
				t.Errorf("sort=%s: total %d", srt, one.Total)
			}
		}
		if code, body := monGet(t, s, "/connz?sort=stop"); code != http.StatusBadRequest || !strings.Contains(string(body), "only valid on closed") {
			t.Errorf("sort=stop on open: %d %s", code, body)
		}
		if code, _ := monGet(t, s, "/connz?sort=nope"); code != http.StatusBadRequest {
			t.Errorf("sort=nope: %d", code)
		}

		// The round trip is measured by a PING the first /connz sent.
		eventually(t, func() string {
			var cz server.Connz
			monJSON(t, s, "/connz", &cz)
			for _, c := range cz.Conns {
				if c.RTT == "" {
					return "no rtt yet"
				}
			}
			return ""
		})

		var sz server.Subsz
		monJSON(t, s, "/subsz", &sz)
		if sz.NumSubs != 2 || sz.Total != 2 || len(sz.Subs) != 0 {
			t.Errorf("subsz %+v", sz)
		}
		monJSON(t, s, "/subsz?subs=1&test=bar.x", &sz)
		if sz.Total != 1 || len(sz.Subs) != 1 || sz.Subs[0].Subject != "bar.*" || sz.Subs[0].Queue != "q" {
			t.Errorf("subsz test=bar.x %+v", sz)
		}

		checkMetrics(t, s)

		// Closed connections keep their figures and reason; the ring holds 3.
		pub.Close()
		var closed server.Connz
		eventually(t, func() string {
			monJSON(t, s, "/connz?state=closed", &closed)
			if closed.Total != 1 {
				return fmt.Sprintf("closed total %d", closed.Total)
			}
			return ""
		})
		c := closed.Conns[0]
		if c.Cid != ps.Cid || c.Reason != "Client Closed" || c.Stop == nil || c.InMsgs != 10 || c.Name != "pub" {
			t.Errorf("closed conn %+v", c)
		}
		var all server.Connz
		monJSON(t, s, "/connz?state=all&sort=cid", &all)
		if all.Total != 2 || all.Conns[0].Cid != ps.Cid {
			t.Errorf("state=all %+v", all.Conns)
		}
		for range 4 {
			connect(t, s).Close()
		}
		eventually(t, func() string {
			monJSON(t, s, "/connz?state=closed&sort=stop", &closed)
			if closed.Total != 3 || slices.ContainsFunc(closed.Conns, func(c *server.ConnInfo) bool { return c.Cid == ps.Cid }) {
				return fmt.Sprintf("ring of 3: total %d", closed.Total)
			}
			return ""
		})
	})
}

// checkMetrics parses /metrics with Prometheus' text parser and compares
// it with /varz (no traffic flows meanwhile).
func checkMetrics(t *testing.T, s *loop.Server) {
	t.Helper()
	code, body := monGet(t, s, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	var v server.Varz
	monJSON(t, s, "/varz", &v)
	want := map[string]float64{
		"evnats_in_msgs_total": float64(v.InMsgs), "evnats_out_msgs_total": float64(v.OutMsgs),
		"evnats_in_bytes_total": float64(v.InBytes), "evnats_out_bytes_total": float64(v.OutBytes),
		"evnats_connections": float64(v.Connections), "evnats_subscriptions": float64(v.Subscriptions),
		"evnats_connections_total": float64(v.TotalConnections), "evnats_slow_consumers_total": float64(v.SlowConsumers),
		"evnats_max_connections": float64(v.MaxConn),
	}
	for name, w := range want {
		if got := metricSum(fams, name, nil); got != w {
			t.Errorf("%s = %v, /varz says %v", name, got, w)
		}
	}
	if s.Options().IO == loop.IOGnet {
		if n := len(fams["evnats_loop_busy_seconds_total"].GetMetric()); n == 0 {
			t.Error("no per-loop metrics on gnet")
		}
		if metricSum(fams, "evnats_loop_in_msgs_total", nil) != float64(v.InMsgs) ||
			metricSum(fams, "evnats_loop_writev_calls_total", nil) == 0 ||
			metricSum(fams, "evnats_loop_reads_total", nil) == 0 {
			t.Errorf("per-loop counters do not add up: in %v writev %v reads %v",
				metricSum(fams, "evnats_loop_in_msgs_total", nil), metricSum(fams, "evnats_loop_writev_calls_total", nil),
				metricSum(fams, "evnats_loop_reads_total", nil))
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes",
		"process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if f := fams["process_open_fds"]; f != nil && f.GetMetric()[0].GetGauge().GetValue() < 3 {
		t.Errorf("process_open_fds %v: fewer than the listeners and this connection", f.GetMetric()[0].GetGauge().GetValue())
	}
	if f := fams["process_resident_memory_bytes"]; f != nil && f.GetMetric()[0].GetGauge().GetValue() < 1<<20 {
		t.Errorf("process_resident_memory_bytes %v", f.GetMetric()[0].GetGauge().GetValue())
	}
}

// metricSum adds the values of name's series whose labels include match.
func metricSum(fams map[string]*dto.MetricFamily, name string, match map[string]string) float64 {
	var sum float64
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		for k, v := range match {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum
}

// TestMonitorJetStream checks /jsz, /varz's jetstream section, /healthz
// and the JetStream metrics after known stream traffic.
func TestMonitorJetStream(t *testing.T) {
	eachTransport(t, loop.Options{HTTPPort: -1, JetStream: true}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i), []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
		}
		cons, err := js.CreateConsumer(ctx, "ORDERS", jetstream.ConsumerConfig{Durable: "worker", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			t.Fatal(err)
		}
		batch, err := cons.Fetch(2, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for range batch.Messages() {
			n++ // not acked: two pending acks
		}
		if n != 2 {
			t.Fatalf("fetched %d", n)
		}

		var jsz server.JSInfo
		monJSON(t, s, "/jsz", &jsz)
		if jsz.Streams != 1 || jsz.Consumers != 1 || jsz.Messages != 5 || jsz.Memory == 0 || jsz.API.Total == 0 || jsz.Disabled {
			t.Errorf("jsz %+v", jsz)
		}
		if len(jsz.AccountDetails) != 0 {
			t.Errorf("jsz without accounts=1 lists accounts")
		}
		monJSON(t, s, "/jsz?streams=1&consumers=1&config=1", &jsz)
		if len(jsz.AccountDetails) != 1 || len(jsz.AccountDetails[0].Streams) != 1 {
			t.Fatalf("jsz details %+v", jsz.AccountDetails)
		}
		sd := jsz.AccountDetails[0].Streams[0]
		if sd.Name != "ORDERS" || sd.State.Msgs != 5 || sd.Config == nil || sd.Config.Subjects[0] != "orders.>" || len(sd.Consumer) != 1 {
			t.Fatalf("stream detail %+v", sd)
		}
		if c := sd.Consumer[0]; c.Name != "worker" || c.NumPending != 3 || c.NumAckPending != 2 {
			t.Errorf("consumer detail %+v", c)
		}
		var bare server.JSInfo
		monJSON(t, s, "/jsz?acc=$G&streams=1", &bare)
		if len(bare.AccountDetails) != 1 || bare.AccountDetails[0].Streams[0].Config != nil || bare.AccountDetails[0].Streams[0].Consumer != nil {
			t.Errorf("jsz acc&streams without config/consumers: %+v", bare.AccountDetails[0].Streams)
		}

		var v server.Varz
		monJSON(t, s, "/varz", &v)
		if v.JetStream.Config == nil || v.JetStream.Stats == nil || v.JetStream.Stats.Memory != jsz.Memory {
			t.Errorf("varz jetstream %+v", v.JetStream)
		}

		for _, q := range []string{"", "?js-enabled-only=true", "?js-server-only=true"} {
			var hs server.HealthStatus
			monJSON(t, s, "/healthz"+q, &hs)
			if hs.Status != "ok" {
				t.Errorf("healthz%s: %+v", q, hs)
			}
		}
		if code, _ := monGet(t, s, "/healthz?js-enabled-only=maybe"); code != http.StatusBadRequest {
			t.Errorf("healthz bad bool: %d", code)
		}

		code, body := monGet(t, s, "/metrics")
		if code != http.StatusOK {
			t.Fatal(code)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		st := map[string]string{"stream": "ORDERS"}
		for name, want := range map[string]float64{
			"evnats_jetstream_stream_messages": 5, "evnats_jetstream_stream_bytes": float64(sd.State.Bytes),
			"evnats_jetstream_stream_consumers": 1, "evnats_jetstream_stream_pending": 3,
			"evnats_jetstream_stream_ack_pending": 2, "evnats_jetstream_stream_redelivered": 0,
			"evnats_jetstream_enabled": 1,
		} {
			if got := metricSum(fams, name, st); name == "evnats_jetstream_enabled" {
				if metricSum(fams, name, nil) != want {
					t.Errorf("%s = %v", name, metricSum(fams, name, nil))
				}
			} else if got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
	})
}

// TestMonitorOtherEndpoints checks that the endpoints nats-server has for
// clusters, accounts and the runtime answer in its format.
func TestMonitorOtherEndpoints(t *testing.T) {
	s := startServer(t, loop.Options{HTTPPort: -1})
	connect(t, s)
	var rz server.Routez
	monJSON(t, s, "/routez", &rz)
	if rz.NumRoutes != 0 || rz.ID == "" {
		t.Errorf("routez %+v", rz)
	}
	var gz server.Gatewayz
	monJSON(t, s, "/gatewayz", &gz)
	var lz server.Leafz
	monJSON(t, s, "/leafz", &lz)
	if lz.NumLeafs != 0 {
		t.Errorf("leafz %+v", lz)
	}
	var az server.Accountz
	monJSON(t, s, "/accountz", &az)
	if !slices.Equal(az.Accounts, []string{"$G", "$SYS"}) { // nats-server lists its implicit system account too
		t.Errorf("accountz %+v", az)
	}
	monJSON(t, s, "/accountz?acc=$G", &az)
	if az.Account == nil || az.Account.ClientCnt != 1 {
		t.Errorf("accountz acc %+v", az.Account)
	}
	var as server.AccountStatz
	monJSON(t, s, "/accstatz", &as)
	if len(as.Accounts) != 1 || as.Accounts[0].Conns != 1 {
		t.Errorf("accstatz %+v", as)
	}
	var ev map[string]any
	monJSON(t, s, "/expvarz", &ev)
	if _, ok := ev["memstats"]; !ok {
		t.Errorf("expvarz has no memstats")
	}
	if _, ok := ev["cmdline"]; ok {
		t.Errorf("expvarz shows the command line")
	}
	var jsz server.JSInfo
	monJSON(t, s, "/jsz", &jsz)
	if !jsz.Disabled {
		t.Errorf("jsz without JetStream: %+v", jsz)
	}
	if code, _ := monGet(t, s, "/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d", code)
	}
	for _, name := range monitor.MetricNames() {
		if !strings.HasPrefix(name, "evnats_") {
			t.Errorf("metric %s", name)
		}
	}
}

// TestMonitorMQTT lists an MQTT connection with its client id and counts
// its session and retained message.
func TestMonitorMQTT(t *testing.T) {
	eachTransport(t, loop.Options{HTTPPort: -1, MQTTPort: -1}, func(t *testing.T, s *loop.Server) {
		o := mqtt.NewClientOptions().AddBroker("tcp://" + s.MQTTAddr().String()).SetClientID("sensor-7").SetConnectTimeout(5 * time.Second)
		c := mqtt.NewClient(o)
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("mqtt connect: %v", tok.Error())
		}
		defer c.Disconnect(0)
		if tok := c.Publish("home/temp", 1, true, "21"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("mqtt publish: %v", tok.Error())
		}
		var cz server.Connz
		monJSON(t, s, "/connz?mqtt_client=sensor-7", &cz)
		if len(cz.Conns) != 1 || cz.Conns[0].MQTTClient != "sensor-7" || cz.Conns[0].InMsgs != 1 {
			t.Fatalf("connz mqtt_client: %+v", cz.Conns)
		}
		monJSON(t, s, "/connz?mqtt_client=other", &cz)
		if len(cz.Conns) != 0 {
			t.Errorf("connz mqtt_client=other: %+v", cz.Conns)
		}
		_, body := monGet(t, s, "/metrics")
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		if metricSum(fams, "evnats_mqtt_sessions", nil) != 1 || metricSum(fams, "evnats_mqtt_connections", nil) != 1 ||
			metricSum(fams, "evnats_mqtt_retained_messages", nil) != 1 {
			t.Errorf("mqtt metrics: sessions %v conns %v retained %v", metricSum(fams, "evnats_mqtt_sessions", nil),
				metricSum(fams, "evnats_mqtt_connections", nil), metricSum(fams, "evnats_mqtt_retained_messages", nil))
		}
	})
}

// TestMonitorConnzTLSAuth: a TLS connection shows its version and cipher,
// and auth=1 its user; without auth=1 the user is not shown.
func TestMonitorConnzTLSAuth(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.HTTPPort = -1
	o.Users = []*loop.User{{Username: "alice", Password: "secret"}}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		nc := connectTLS(t, s, f, nats.UserInfo("alice", "secret"))
		st, err := nc.TLSConnectionState()
		if err != nil {
			t.Fatal(err)
		}
		var cz server.Connz
		monJSON(t, s, "/connz?auth=1", &cz)
		if len(cz.Conns) != 1 {
			t.Fatalf("connz %+v", cz.Conns)
		}
		c := cz.Conns[0]
		if c.TLSVersion != "1.3" || c.TLSCipher != tls.CipherSuiteName(st.CipherSuite) || c.AuthorizedUser != "alice" || c.Account != "$G" {
			t.Errorf("tls/auth conn: version %q cipher %q user %q account %q", c.TLSVersion, c.TLSCipher, c.AuthorizedUser, c.Account)
		}
		var plain server.Connz
		monJSON(t, s, "/connz?user=alice", &plain)
		if len(plain.Conns) != 1 || plain.Conns[0].AuthorizedUser != "" {
			t.Errorf("connz without auth=1 shows the user: %+v", plain.Conns)
		}
		var v server.Varz
		monJSON(t, s, "/varz", &v)
		if !v.TLSRequired || !v.AuthRequired {
			t.Errorf("varz tls_required %v auth_required %v", v.TLSRequired, v.AuthRequired)
		}
	})
}

// TestMonitorMaxClosedClientsKey: the config key sizes the closed ring;
// negative keeps none.
func TestMonitorMaxClosedClientsKey(t *testing.T) {
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, writeConf(t, "max_closed_clients: -1\n")); err != nil {
		t.Fatal(err)
	}
	if o.MaxClosedClients != -1 {
		t.Fatalf("MaxClosedClients %d", o.MaxClosedClients)
	}
	o.HTTPPort = -1
	s := startServer(t, o)
	connect(t, s).Close()
	var cz server.Connz
	monJSON(t, s, "/connz?state=closed", &cz)
	if cz.Total != 0 {
		t.Errorf("closed ring kept %d with max_closed_clients -1", cz.Total)
	}
}

// TestMonitorHTTPS: https_port serves the endpoints with the tls block's
// certificate; /varz names both ports; without a tls block it is refused.
func TestMonitorHTTPS(t *testing.T) {
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.HTTPPort, o.HTTPSPort = -1, -1
	s := startServer(t, o)
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	cl := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	resp, err := cl.Get("https://" + s.MonitorTLSAddr().String() + "/varz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v server.Varz
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatal(err)
	}
	if v.HTTPSPort != s.MonitorTLSAddr().(*net.TCPAddr).Port || v.HTTPPort != s.MonitorAddr().(*net.TCPAddr).Port {
		t.Errorf("varz ports http %d https %d", v.HTTPPort, v.HTTPSPort)
	}
	if _, err := loop.New(loop.Options{HTTPSPort: -1}); err == nil || !strings.Contains(err.Error(), "https_port needs the tls block") {
		t.Errorf("https_port without tls: %v", err)
	}
}

// TestMonitorCloseReasons: closed connections carry nats-server's reason
// for what closed them.
func TestMonitorCloseReasons(t *testing.T) {
	o := loop.Options{HTTPPort: -1, MaxPayload: 16, Users: []*loop.User{{Username: "u", Password: "p"}}}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		bad := dialRaw(t, s)
		bad.send("CONNECT {\"user\":\"u\",\"pass\":\"wrong\"}\r\n")
		bad.expect("-ERR 'Authorization Violation'")
		big := dialRaw(t, s)
		big.send("CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nPUB x 100\r\n")
		garbage := dialRaw(t, s)
		garbage.send("CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\nHELLO\r\n")
		connect(t, s, nats.UserInfo("u", "p")).Close()
		want := map[string]bool{"Authentication Failure": true, "Maximum Message Payload Exceeded": true,
			"Parse Error": true, "Client Closed": true}
		eventually(t, func() string {
			var cz server.Connz
			monJSON(t, s, "/connz?state=closed&sort=reason", &cz)
			got := map[string]bool{}
			for _, c := range cz.Conns {
				got[c.Reason] = true
			}
			if len(got) != len(want) {
				return fmt.Sprintf("reasons %v, want %v", got, want)
			}
			for r := range want {
				if !got[r] {
					return fmt.Sprintf("reasons %v, want %v", got, want)
				}
			}
			return ""
		})
	})
}

// TestMonitorBasePath: http_base_path prefixes every endpoint, the bare
// prefix redirects to the page, and the old paths are gone.
func TestMonitorBasePath(t *testing.T) {
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, writeConf(t, "http_base_path: \"nats/\"\n")); err != nil {
		t.Fatal(err)
	}
	o.HTTPPort = -1
	s := startServer(t, o)
	var v server.Varz
	monJSON(t, s, "/nats/varz", &v)
	if v.HTTPBasePath != "/nats" {
		t.Errorf("http_base_path %q", v.HTTPBasePath)
	}
	if code, _ := monGet(t, s, "/varz"); code != http.StatusNotFound {
		t.Errorf("/varz outside the base path: %d", code)
	}
	if code, body := monGet(t, s, "/nats"); code != http.StatusOK || !strings.Contains(string(body), "/connz") {
		t.Errorf("/nats (redirected to /nats/): %d %s", code, body)
	}
}

// TestMonitorRequestWithoutPort: the endpoints answer through
// Monitor.Request with no monitoring port, as a $SYS responder would ask.
func TestMonitorRequestWithoutPort(t *testing.T) {
	s := startServer(t, loop.Options{})
	connect(t, s, nats.Name("x"))
	code, body := s.Monitor().Request("/connz", url.Values{"sort": {"cid"}, "subs": {"1"}})
	var cz server.Connz
	if err := json.Unmarshal(body, &cz); code != http.StatusOK || err != nil || cz.NumConns != 1 || cz.Conns[0].Name != "x" {
		t.Fatalf("connz: %d %s", code, body)
	}
	if code, body := s.Monitor().Request("/connz", url.Values{"sort": {"nope"}}); code != http.StatusBadRequest {
		t.Errorf("bad sort: %d %s", code, body)
	}
}

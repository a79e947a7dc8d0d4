package loop_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// TestSlowConsumerIsolation: a subscriber that stops reading is cut off with
// -ERR 'Slow Consumer', while a healthy subscriber on the same subject gets
// every message and the publisher is never stalled.
func TestSlowConsumerIsolation(t *testing.T) {
	eachTransport(t, loop.Options{MaxPending: 4 << 20, WriteDeadline: 2 * time.Second}, func(t *testing.T, s *loop.Server) {
		slow := dialRaw(t, s)
		slow.send("CONNECT {\"verbose\":false}\r\nSUB flood 1\r\nPING\r\n")
		slow.expect("PONG")
		const n = 40000
		good := connect(t, s)
		var wg sync.WaitGroup
		wg.Add(n)
		good.Subscribe("flood", func(*nats.Msg) { wg.Done() })
		good.Flush()
		pub := connect(t, s)
		payload := make([]byte, 1024)
		for i := 0; i < n; i++ {
			if err := pub.Publish("flood", payload); err != nil {
				t.Fatal(err)
			}
			if i%1000 == 999 {
				pub.Flush() // pace: the healthy subscriber must not fall 4 MiB behind
				good.Flush()
			}
		}
		pub.Flush()
		waitGroup(t, &wg, 20*time.Second)
		waitFor(t, func() bool { return s.SlowConsumers() >= 1 })
		// The slow client was closed: draining its socket ends in EOF.
		_ = slow.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		rest, err := io.ReadAll(slow.r)
		if err != nil {
			t.Fatalf("slow consumer not closed: %v", err)
		}
		if len(rest) >= 16<<20 {
			t.Fatalf("slow consumer was sent %d bytes, beyond its 4 MiB allowance", len(rest))
		}
		waitFor(t, func() bool { return s.NumClients() == 2 })
	})
}

func TestStaleConnection(t *testing.T) {
	eachTransport(t, loop.Options{PingInterval: 100 * time.Millisecond, MaxPingsOut: 2}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false}\r\n")
		rc.expect("PING")
		rc.expect("PING")
		rc.expect("-ERR 'Stale Connection'")
		rc.expectClosed()
	})
}

func TestPingKeepsAlive(t *testing.T) {
	eachTransport(t, loop.Options{PingInterval: 100 * time.Millisecond, MaxPingsOut: 2}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false}\r\n")
		for i := 0; i < 4; i++ {
			rc.expect("PING")
			rc.send("PONG\r\n")
		}
	})
}

func TestMaxConnections(t *testing.T) {
	eachTransport(t, loop.Options{MaxConnections: 1}, func(t *testing.T, s *loop.Server) {
		connect(t, s)
		rc := dialRaw(t, s)
		rc.expect("-ERR 'maximum connections exceeded'")
		rc.expectClosed()
	})
}

func TestMaxSubscriptions(t *testing.T) {
	eachTransport(t, loop.Options{MaxSubscriptions: 2}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false}\r\nSUB a 1\r\nSUB b 2\r\nSUB c 3\r\n")
		rc.expect("-ERR 'maximum subscriptions exceeded'")
		rc.send("PING\r\n")
		rc.expect("PONG")
	})
}

func TestMonitoring(t *testing.T) {
	eachTransport(t, loop.Options{HTTPPort: -1}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		nc.Subscribe("m", func(*nats.Msg) {})
		nc.Publish("m", []byte("12345"))
		nc.Flush()
		base := "http://" + s.MonitorAddr().String()
		var health map[string]string
		getJSON(t, base+"/healthz", &health)
		if health["status"] != "ok" {
			t.Fatalf("healthz %v", health)
		}
		var v map[string]any
		getJSON(t, base+"/varz", &v)
		for _, k := range []string{"server_id", "version", "connections", "total_connections", "in_msgs", "out_msgs", "in_bytes", "out_bytes", "subscriptions", "max_payload", "slow_consumers", "uptime", "mem"} {
			if _, ok := v[k]; !ok {
				t.Errorf("varz lacks %q", k)
			}
		}
		if v["in_msgs"].(float64) != 1 || v["in_bytes"].(float64) != 5 || v["subscriptions"].(float64) != 1 {
			t.Errorf("varz counters %v %v %v", v["in_msgs"], v["in_bytes"], v["subscriptions"])
		}
	})
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "evnats.conf")
	os.WriteFile(path, []byte(`
# nats-server syntax
listen: "127.0.0.1:-1"
max_payload: 2MB
ping_interval: "30s"
loops: 2
mqtt { listen: "127.0.0.1:-1" }
authorization {
  users = [
    { user: pub, password: p, permissions: { publish: "in.>", subscribe: { deny: ["secret"] } } }
    { user: all, password: q }
  ]
}
`), 0o644)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.MaxPayload != 2<<20 || o.PingInterval != 30*time.Second || o.Loops != 2 || len(o.Users) != 2 || o.Port != -1 || o.MQTTPort != -1 {
		t.Fatalf("options %+v", o)
	}
	if p := o.Users[0].Permissions; p == nil || p.Publish.Allow[0] != "in.>" || p.Subscribe.Deny[0] != "secret" {
		t.Fatalf("permissions %+v", o.Users[0].Permissions)
	}
	s := startServer(t, o)
	connect(t, s, nats.UserInfo("all", "q"))
	if s.MQTTAddr() == nil {
		t.Fatal("mqtt block did not open the MQTT listener")
	}

	os.WriteFile(path, []byte("unknown_key: 1\n"), 0o644)
	if err := loop.ApplyConfigFile(&loop.Options{}, path); err == nil || !strings.Contains(err.Error(), "unknown_key") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestLameDuck(t *testing.T) {
	eachTransport(t, loop.Options{LameDuckGrace: 200 * time.Millisecond, LameDuckDuration: 200 * time.Millisecond}, func(t *testing.T, s *loop.Server) {
		ldm := make(chan struct{}, 1)
		connect(t, s, nats.LameDuckModeHandler(func(*nats.Conn) { ldm <- struct{}{} }))
		go s.LameDuck()
		select {
		case <-ldm:
		case <-time.After(5 * time.Second):
			t.Fatal("client not told about lame duck mode")
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("server did not shut down after lame duck")
		}
	})
}

package mqtt_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho5 "github.com/eclipse/paho.golang/paho"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// TestQueuedMessagesSurviveKill9 runs evnats as a process: QoS 1 messages
// for a persistent session whose client is away are acknowledged only once
// written, so after SIGKILL and a restart every acknowledged one is there.
func TestQueuedMessagesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	start, dialAt := evnatsProcess(t)
	p := start()
	r := dialAt()
	r.connect("away", false, 0)
	r.subscribe(1, "k9/#", 1)
	r.send([]byte{mcodec.DISCONNECT << 4, 0})
	r.expectClosed()

	const n = 300
	pub := dialAt()
	pub.connect("pub", true, 0)
	for i := 1; i <= n; i++ {
		pub.publish("k9/x", strconv.Itoa(i), 1, uint16(i), false)
		pub.expectAck(mcodec.PUBACK, uint16(i))
	}
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()

	start()
	r = dialAt()
	if !r.connect("away", false, 0) {
		t.Fatal("session lost in the kill")
	}
	got := map[string]bool{}
	for len(got) < n {
		m := r.readPublish()
		got[m.payload] = true
		r.ack(mcodec.PUBACK, m.id)
	}
	for i := 1; i <= n; i++ {
		if !got[strconv.Itoa(i)] {
			t.Fatalf("acknowledged message %d lost", i)
		}
	}
}

// evnatsProcess builds evnats and returns how to start it (with JetStream
// in a fixed store directory, MQTT on a fixed port) and how to dial its
// MQTT port.
func evnatsProcess(t *testing.T, args ...string) (start func() *exec.Cmd, dialAt func() *rawMQTT) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evnats")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/evnats/evnats/cmd/evnats").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	natsPort, mqttPort := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(mqttPort)
	start = func() *exec.Cmd {
		cmd := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "--mqtt_port", strconv.Itoa(mqttPort), "-js", "-sd", dir}, args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		for deadline := time.Now().Add(10 * time.Second); ; {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatal("server did not start")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	dialAt = func() *rawMQTT {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return newRaw(t, conn)
	}

	return start, dialAt
}

// TestMQTT5SessionSurvivesKill9: MQTT 5 session state (the session expiry
// interval, subscription identifiers, queued messages with their
// properties) survives SIGKILL; a session whose interval has passed by
// the time the server is back is gone.
func TestMQTT5SessionSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	start, dialAt := evnatsProcess(t)
	p := start()
	for _, c := range []struct {
		id     string
		expiry byte
	}{{"long5", 0xff}, {"short5", 1}} {
		r := dialAt()
		r.connect5(c.id, props5(mcodec.PropSessionExpiry, 0, 0, c.expiry, c.expiry))
		r.send(packet(mcodec.SUBSCRIBE<<4|2, append(append([]byte{0, 1}, props5(mcodec.PropSubscriptionID, 9)...), append(str(nil, "k5/#"), 1)...)))
		if typ, _, _ := r.read(); typ != mcodec.SUBACK {
			t.Fatalf("SUBACK type %d", typ)
		}
		r.send([]byte{mcodec.DISCONNECT << 4, 0})
		r.expectClosed()
	}
	pub := dialAt()
	pub.connect5("pub5", props5())
	pubProps := props5(append([]byte{mcodec.PropUserProperty}, append(str(nil, "k"), str(nil, "v")...)...)...)
	pub.send(packet(mcodec.PUBLISH<<4|1<<1, append(append(str(nil, "k5/x"), 0, 1), append(pubProps, "kept"...)...)))
	pub.expectAck(mcodec.PUBACK, 1)
	pub.pingPong()
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()
	time.Sleep(1100 * time.Millisecond) // past short5's expiry interval

	start()
	r := dialAt()
	body := append(str(nil, "MQTT"), 5, 0, 0, 0) // clean start off
	body = append(body, props5(mcodec.PropSessionExpiry, 0, 0, 0xff, 0xff)...)
	r.send(packet(mcodec.CONNECT<<4, str(body, "long5")))
	if typ, _, b := r.read(); typ != mcodec.CONNACK || b[0] != 1 || b[1] != 0 {
		t.Fatalf("long5 after kill: CONNACK type %d % x (want session present)", typ, b)
	}
	typ, _, b := r.read()
	if typ != mcodec.PUBLISH || !bytes.HasSuffix(b, []byte("kept")) || !bytes.Contains(b, []byte{mcodec.PropUserProperty, 0, 1, 'k', 0, 1, 'v'}) {
		t.Fatalf("long5's queued message: type %d % x", typ, b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := dialAt()
		body := append(str(nil, "MQTT"), 5, 0, 0, 0)
		body = append(body, props5()...)
		r.send(packet(mcodec.CONNECT<<4, str(body, "short5")))
		typ, _, b := r.read()
		if typ != mcodec.CONNACK {
			t.Fatalf("short5: type %d", typ)
		}
		if b[0] == 0 {
			break // expired while the server was down, or since
		}
		if time.Now().After(deadline) {
			t.Fatal("short5 did not expire")
		}
		r.conn.Close()
		time.Sleep(200 * time.Millisecond) // housekeeping ends expired sessions once a second
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMQTT5WillDelaySurvivesKill9: an MQTT 5 client with a session expiry
// interval and a will delay drops its connection; the server is killed
// (SIGKILL) before the delay is over and started again; the will is still
// published, once the delay has passed, not before and not lost.
func TestMQTT5WillDelaySurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	httpPort := freePort(t)
	start, dialAt := evnatsProcess(t, "-m", strconv.Itoa(httpPort))
	p := start()
	const delay = 3
	dropped := time.Now()
	wc := dialAt()
	connect5Conn(t, wc.conn, &paho5.Connect{ClientID: "k9will", KeepAlive: 30, CleanStart: true,
		Properties:     &paho5.ConnectProperties{SessionExpiryInterval: u32(60)},
		WillMessage:    &paho5.WillMessage{Topic: "k9will/gone", Payload: []byte("bye"), QoS: 1},
		WillProperties: &paho5.WillProperties{WillDelayInterval: u32(delay)}})
	// The server sees the connection end (its gauge drops to 0), then a
	// retained QoS 1 publish's PUBACK, which waits for every record
	// queued before it, says the session's snapshot is on disk.
	wc.conn.Close() // no DISCONNECT: the will stands
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics"
	waitMetric(t, metricsURL, "evnats_mqtt_connections 0")
	pub := dialAt()
	pub.connect("k9pub", true, 0)
	pub.send(mcodec.AppendPublish(nil, []byte("k9will/sync"), []byte("x"), 1, true, false, 1))
	pub.expectAck(mcodec.PUBACK, 1)
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()

	start()
	sub := connect5Conn(t, dialAt().conn, nil)
	sub.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "k9will/gone", QoS: 1}}})
	select {
	case m := <-sub.msgs:
		if string(m.Payload) != "bye" {
			t.Fatalf("will payload %q", m.Payload)
		}
		if since := time.Since(dropped); since < delay*time.Second {
			t.Fatalf("will published %v after the drop, before its %ds delay", since, delay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the will was lost in the kill")
	}
	sub.none(t)
}

// waitMetric polls a /metrics URL until one of its lines is line.
func waitMetric(t *testing.T, url, line string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if l == line {
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %q", url, line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMQTT5WillOfConnectedClientSurvivesKill9: the server is killed while
// an MQTT 5 client with a will (delay 2 s, session expiry 60 s) is
// connected. That ended its connection without DISCONNECT, so after the
// restart its will is published once the delay has passed, counted from
// the restart; a client with a will that is back in time has none
// published.
func TestMQTT5WillOfConnectedClientSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	start, dialAt := evnatsProcess(t)
	p := start()
	const delay = 2
	for _, id := range []string{"k9gone", "k9back"} {
		connect5Conn(t, dialAt().conn, &paho5.Connect{ClientID: id, KeepAlive: 30, CleanStart: true,
			Properties:     &paho5.ConnectProperties{SessionExpiryInterval: u32(60)},
			WillMessage:    &paho5.WillMessage{Topic: "k9c/" + id, Payload: []byte("bye")},
			WillProperties: &paho5.WillProperties{WillDelayInterval: u32(delay)}})
	}
	// The wills are armed in the sessions' records before CONNACK; a
	// retained QoS 1 publish's PUBACK says they are written.
	pub := dialAt()
	pub.connect("k9cpub", true, 0)
	pub.send(mcodec.AppendPublish(nil, []byte("k9c/sync"), []byte("x"), 1, true, false, 1))
	pub.expectAck(mcodec.PUBACK, 1)
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()

	start()
	restarted := time.Now()
	connect5Conn(t, dialAt().conn, &paho5.Connect{ClientID: "k9back", Properties: &paho5.ConnectProperties{SessionExpiryInterval: u32(60)}})
	sub := connect5Conn(t, dialAt().conn, nil)
	sub.sub(t, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: "k9c/+", QoS: 0, RetainHandling: 2}}})
	select {
	case m := <-sub.msgs:
		if m.Topic != "k9c/k9gone" {
			t.Fatalf("will on %q", m.Topic)
		}
		if since := time.Since(restarted); since < delay*time.Second-200*time.Millisecond {
			t.Fatalf("will published %v after the restart, before its %ds delay", since, delay)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the will of a client connected at the kill was lost")
	}
	sub.none(t)
}

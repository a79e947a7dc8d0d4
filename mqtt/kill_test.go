package mqtt_test

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

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
func evnatsProcess(t *testing.T) (start func() *exec.Cmd, dialAt func() *rawMQTT) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evnats")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/evnats/evnats/cmd/evnats").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	natsPort, mqttPort := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(mqttPort)
	start = func() *exec.Cmd {
		cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "--mqtt_port", strconv.Itoa(mqttPort), "-js", "-sd", dir)
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

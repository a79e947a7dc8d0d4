package mqtt_test

import (
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
	bin := filepath.Join(t.TempDir(), "evnats")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/evnats/evnats/cmd/evnats").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	natsPort, mqttPort := freePort(t), freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(mqttPort)
	start := func() *exec.Cmd {
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
	dialAt := func() *rawMQTT {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return newRaw(t, conn)
	}

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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

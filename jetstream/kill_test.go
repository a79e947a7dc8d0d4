package jetstream_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestAckedMessagesSurviveKill9 runs evnats as a process, publishes to a
// file stream while it is killed with SIGKILL mid-stream, restarts it on the
// same directory and checks that every acknowledged message is there.
func TestAckedMessagesSurviveKill9(t *testing.T) {
	bin, dir, port := processSetup(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)

	p := startProc(t, bin, port, dir)
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(1024))
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "K", Subjects: []string{"k"}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]string{}
	for i := 0; i < 20000; i++ {
		data := strconv.Itoa(i)
		f, err := js.PublishAsync("k", []byte(data))
		if err != nil {
			break // the connection is gone
		}
		go func() {
			select {
			case ack := <-f.Ok():
				mu.Lock()
				acked[ack.Sequence] = data
				mu.Unlock()
			case <-f.Err():
			}
		}()
		if i == 15000 {
			_ = p.Process.Signal(syscall.SIGKILL) // mid-stream, acks in flight
		}
	}
	_ = p.Process.Signal(syscall.SIGKILL) // also when publishing stalled before 15000
	_, _ = p.Process.Wait()
	nc.Close()
	time.Sleep(100 * time.Millisecond) // let the ack goroutines record what arrived
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 1000 {
		t.Fatalf("only %d acks before the kill; test is not testing", len(acked))
	}

	startProc(t, bin, port, dir)
	nc2, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	// Its own deadline: one get per acked message (up to 15,000) outlasts
	// the publish phase's context under -race on a loaded machine.
	vc, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := js2.Stream(vc, "K")
	if err != nil {
		t.Fatal(err)
	}
	for seq, data := range acked {
		m, err := st.GetMsg(vc, seq)
		if err != nil || string(m.Data) != data {
			t.Fatalf("acked message %d lost after kill -9: %v", seq, err)
		}
	}
	info, _ := st.Info(vc)
	t.Logf("%d acked before SIGKILL; %d stored after restart", len(acked), info.State.Msgs)
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// processSetup builds the server binary once per test run and returns it
// with a fresh store directory and a free port.
func processSetup(t *testing.T) (bin, dir string, port int) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the server binary")
	}
	buildOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "evnats-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(tmp, "evnats")
		if out, err := exec.Command("go", "build", "-o", builtBin, "github.com/evnats/evnats/cmd/evnats").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin, t.TempDir(), freePort(t)
}

func startProc(t *testing.T, bin string, port int, dir string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestConfirmedAcksSurviveKill9: acks a client saw confirmed (double ack)
// are still acked after the server is killed with SIGKILL and restarted.
func TestConfirmedAcksSurviveKill9(t *testing.T) {
	bin, dir, port := processSetup(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	p := startProc(t, bin, port, dir)
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	c := ctx(t)
	st, err := js.CreateStream(c, jetstream.StreamConfig{Name: "A", Subjects: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		js.PublishAsync("a", []byte("x"))
	}
	<-js.PublishAsyncComplete()
	cons, err := st.CreateOrUpdateConsumer(c, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var confirmed uint64
	for confirmed < 300 {
		b, err := cons.Fetch(50, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for m := range b.Messages() {
			if err := m.DoubleAck(c); err != nil {
				t.Fatal(err)
			}
			md, _ := m.Metadata()
			confirmed = md.Sequence.Stream
		}
	}
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()
	nc.Close()

	startProc(t, bin, port, dir)
	nc2, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	st2, _ := js2.Stream(c, "A")
	cons2, err := st2.Consumer(c, "d")
	if err != nil {
		t.Fatalf("consumer lost: %v", err)
	}
	info, _ := cons2.Info(c)
	if info.AckFloor.Stream < confirmed || info.NumAckPending != 0 {
		t.Fatalf("%d acks confirmed before SIGKILL; after restart ack floor %d, ack pending %d", confirmed, info.AckFloor.Stream, info.NumAckPending)
	}
	t.Logf("%d confirmed acks before SIGKILL; ack floor %d after restart", confirmed, info.AckFloor.Stream)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBin != "" {
		_ = os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestStreamDefinitionsSurviveKill9 creates, updates and deletes file
// streams and durable consumers from several clients while the server is
// killed with SIGKILL, restarts it and checks: every acknowledged create
// and update is there with its acknowledged config, every acknowledged
// delete stays deleted, and what was in flight is absent or complete.
func TestStreamDefinitionsSurviveKill9(t *testing.T) {
	bin, dir, port := processSetup(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	p := startProc(t, bin, port, dir)
	c := ctx(t)

	var mu sync.Mutex
	want := map[string]string{}   // acknowledged: stream or stream/consumer -> description; "" deleted
	deleting := map[string]bool{} // streams whose delete was sent
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		nc, err := nats.Connect(url, nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack := func(key, desc string) {
				mu.Lock()
				want[key] = desc
				mu.Unlock()
			}
			for i := 0; ; i++ {
				name := fmt.Sprintf("K%d_%d", g, i)
				cfg := jetstream.StreamConfig{Name: name, Subjects: []string{"k." + name}, Description: "v1"}
				if _, err := js.CreateStream(c, cfg); err != nil {
					return // killed
				}
				ack(name, "v1")
				if _, err := js.CreateOrUpdateConsumer(c, name, jetstream.ConsumerConfig{Durable: "D", Description: "d1"}); err != nil {
					return
				}
				ack(name+"/D", "d1")
				cfg.Description = "v2"
				if _, err := js.UpdateStream(c, cfg); err != nil {
					return
				}
				ack(name, "v2")
				if i%2 == 1 {
					mu.Lock()
					deleting[name] = true
					mu.Unlock()
					if err := js.DeleteStream(c, name); err != nil {
						return
					}
					ack(name, "")
					ack(name+"/D", "")
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(want)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling the count: nothing to wait on
	}
	_ = p.Process.Signal(syscall.SIGKILL)
	_, _ = p.Process.Wait()
	wg.Wait()

	startProc(t, bin, port, dir)
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	mu.Lock()
	defer mu.Unlock()
	for key, desc := range want {
		stream, cons, isCons := strings.Cut(key, "/")
		st, err := js.Stream(c, stream)
		var got string
		switch {
		case err != nil:
		case isCons:
			if cn, err := st.Consumer(c, cons); err == nil {
				info, _ := cn.Info(c)
				got = info.Config.Description
			}
		default:
			info, _ := st.Info(c)
			got = info.Config.Description
		}
		// What was in flight may have happened: an update (v2 for an
		// acknowledged v1), a delete.
		if got != desc && !(desc == "v1" && got == "v2") && !(got == "" && deleting[stream]) {
			t.Fatalf("%s acknowledged as %q, after SIGKILL and restart %q (%v)", key, desc, got, err)
		}
	}
	names := js.StreamNames(c)
	found := 0
	for name := range names.Name() {
		found++
		st, _ := js.Stream(c, name)
		info, _ := st.Info(c)
		if d := info.Config.Description; d != "v1" && d != "v2" {
			t.Fatalf("stream %s recovered incomplete: %+v", name, info.Config)
		}
	}
	t.Logf("%d acknowledged changes before SIGKILL; %d streams after restart", len(want), found)
}

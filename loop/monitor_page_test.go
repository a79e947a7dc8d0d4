package loop_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var screenshot = flag.String("screenshot", "", "TestMonitorLivePage: write the live page's screenshot to this file (make screenshot: docs/monitor.png)")

// TestMonitorLivePage loads the monitoring page in headless Chromium while
// clients publish, and checks from the rendered DOM that every chart drew
// non-zero figures: message rates, connections, per-loop load, streams.
func TestMonitorLivePage(t *testing.T) {
	chromium := looptest.Tool(t, "chromium", "apt-get install chromium")
	s := startServer(t, loop.Options{HTTPPort: -1, JetStream: true, IO: loop.IOGnet, Loops: 2})

	// The page's root answers a browser with HTML, and curl with the list.
	req, _ := http.NewRequest("GET", "http://"+s.MonitorAddr().String()+"/", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Fatalf("/ for a browser: %s", ct)
	}
	if _, body := monGet(t, s, "/"); !strings.Contains(string(body), "/connz") {
		t.Fatalf("/ for curl: %s", body)
	}

	// Load: publishers and subscribers on both loops, and a stream.
	nc := connect(t, s)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, name := range []string{"ORDERS", "EVENTS"} {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 30 {
		if _, err := js.Publish(ctx, fmt.Sprintf("orders.%d", i), []byte("order")); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		sub := connect(t, s)
		if _, err := sub.Subscribe("load.>", func(*nats.Msg) {}); err != nil {
			t.Fatal(err)
		}
		pub := connect(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, 128)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				for range 200 {
					_ = pub.Publish(fmt.Sprintf("load.%d", i), payload)
				}
				_ = pub.Publish(fmt.Sprintf("events.%d", n%5), payload)
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	url := "http://" + s.MonitorAddr().String() + "/"
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
		"--window-size=1280,820"}
	run := func(extra ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append(append(args, extra...), url)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v", err)
		}
		return out
	}
	dom := string(run("--virtual-time-budget=6000", "--dump-dom"))
	maxOf := func(id string) float64 {
		m := regexp.MustCompile(`<canvas id="` + id + `" [^>]*data-max="([0-9.e+-]+)"`).FindStringSubmatch(dom)
		if m == nil {
			t.Fatalf("canvas %s drew nothing:\n%s", id, dom)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	for _, id := range []string{"msgs", "bytes", "conns", "loops", "streams"} {
		if maxOf(id) <= 0 {
			t.Errorf("chart %s shows only zeros", id)
		}
	}
	if m := regexp.MustCompile(`id="err">([^<]+)<`).FindStringSubmatch(dom); m != nil {
		t.Errorf("page error: %s", m[1])
	}

	path := *screenshot
	if path == "" {
		path = filepath.Join(t.TempDir(), "monitor.png")
	} else if path, err = filepath.Abs(path); err != nil {
		t.Fatal(err)
	}
	run("--virtual-time-budget=30000", "--screenshot="+path) // 30 polls: a longer history for the picture
	if st, err := os.Stat(path); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s: %v", path, err)
	}
}

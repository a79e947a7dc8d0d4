package mqtt_test

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// countingFS counts the bytes the store writes.
type countingFS struct {
	store.OSFS
	n atomic.Int64
}

type countingFile struct {
	store.File
	n *atomic.Int64
}

func (f *countingFS) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{file, &f.n}, nil
}

func (f countingFile) Write(b []byte) (int, error) {
	n, err := f.File.Write(b)
	f.n.Add(int64(n))
	return n, err
}

// procStatus returns a /proc/self/status field in MB.
func procStatus(t *testing.T, field string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return float64(kb) / 1024
		}
	}
	return 0
}

// TestMeasureOfflineQueue publishes 100,000 x 1 KB QoS 1 messages to an
// absent persistent session and reports the publish rate, the process's
// memory and what the session store wrote, then and in the next 3 s idle.
// Opt in with EVNATS_MEASURE=1.
func TestMeasureOfflineQueue(t *testing.T) {
	if os.Getenv("EVNATS_MEASURE") != "1" {
		t.Skip("set EVNATS_MEASURE=1 to measure")
	}
	t.Run("default limits", func(t *testing.T) { measureOfflineQueue(t, loop.Options{}) })
	t.Run("limits that hold all", func(t *testing.T) {
		measureOfflineQueue(t, loop.Options{MQTTMaxSessionQueueBytes: 1 << 30})
	})
}

func measureOfflineQueue(t *testing.T, o loop.Options) {
	const n, size, window = 100_000, 1024, 1000
	fs := &countingFS{}
	o.JetStream, o.JetStreamFS, o.StoreDir = true, fs, t.TempDir()
	s := startMQTT(t, o)
	r := dialRaw(t, s)
	r.connect("absent", false, 0)
	r.subscribe(1, "m/#", 1)
	r.send([]byte{mcodec.DISCONNECT << 4, 0})
	r.expectClosed()

	p := dialRaw(t, s)
	p.connect("pub", true, 0)
	acks := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			typ, _, _, err := p.tryRead()
			if err == nil && typ != mcodec.PUBACK {
				err = os.ErrInvalid
			}
			if err != nil {
				done <- err
				return
			}
			<-acks
		}
		done <- nil
	}()
	payload := bytes.Repeat([]byte{'x'}, size)
	buf := make([]byte, 0, size+64)
	before := fs.n.Load()
	start := time.Now()
	for i := 0; i < n; i++ {
		acks <- struct{}{}
		buf = mcodec.AppendPublish(buf[:0], []byte("m/x"), payload, 1, false, false, uint16(i%60000+1))
		p.send(buf)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	written := fs.n.Load() - before
	rss := procStatus(t, "VmRSS")
	idleStart := fs.n.Load()
	time.Sleep(3 * time.Second) // measuring what idle housekeeping writes
	idle := fs.n.Load() - idleStart
	runtime.GC()
	idleRSS := procStatus(t, "VmRSS")

	// A restart reads what is queued; then the client comes back for it.
	s.Shutdown()
	start = time.Now()
	s = startMQTT(t, o)
	restart := time.Since(start)
	start = time.Now()
	r = dialRaw(t, s)
	r.connect("absent", false, 0)
	kept := 0
	for {
		typ, flags, body, err := r.tryRead()
		if err != nil {
			break // nothing more within the read deadline
		}
		if typ == mcodec.PUBLISH && flags>>1&3 == 1 {
			kept++
			id := body[2+(int(body[0])<<8|int(body[1])):]
			r.ack(mcodec.PUBACK, uint16(id[0])<<8|uint16(id[1]))
		}
		if kept == n {
			break
		}
	}
	t.Logf("%d x %d B QoS 1 to an absent session: %.0f msg/s, %d kept; RSS %.0f MB (peak %.0f MB, %.0f MB after 3 s idle); store wrote %.1f MB while publishing, %.1f MB in the next 3 s idle; restart %v; the client took the kept ones in %v",
		n, size, float64(n)/elapsed.Seconds(), kept, rss, procStatus(t, "VmHWM"), idleRSS,
		float64(written)/1e6, float64(idle)/1e6, restart.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

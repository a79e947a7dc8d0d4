package loop_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// memConns sockets each send one 1 MB message, then idle: the server must
// not keep a megabyte per socket (the issue measured 790 MB RSS for 500).
const (
	memConns    = 200
	memMsgSize  = 1 << 20
	memMaxDelta = 100 << 20 // well under memConns MB
)

// heapAfterGC returns the live heap once collected.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// checkHeldMemory opens memConns sockets to addr, has each send one large
// message with send (which returns once the server has parsed it), and
// checks the live heap while they all stay open.
func checkHeldMemory(t *testing.T, addr net.Addr, send func(net.Conn) error) {
	base := heapAfterGC()
	var wg sync.WaitGroup
	errs := make(chan error, memConns)
	sem := make(chan struct{}, 16)
	for range memConns {
		wg.Add(1)
		sem <- struct{}{}
		// Each sends at once: a silent socket is closed after the auth timeout.
		nc, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
			if err := send(nc); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	held := int64(heapAfterGC()) - int64(base)
	t.Logf("%d sockets after one %d-byte message each: heap +%d MB", memConns, memMsgSize, held>>20)
	if held > memMaxDelta {
		t.Fatalf("server holds %d MB for %d idle sockets; want < %d MB", held>>20, memConns, memMaxDelta>>20)
	}
}

// TestLargePubReleasesMemory: the parser drops a payload buffer that one
// large PUB grew instead of pinning it on an idle connection.
func TestLargePubReleasesMemory(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), memMsgSize)
	msg := append(fmt.Appendf(nil, "CONNECT {\"verbose\":false}\r\nPUB big %d\r\n", len(payload)), payload...)
	msg = append(msg, "\r\nPING\r\n"...)
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		checkHeldMemory(t, s.Addr(), func(nc net.Conn) error {
			if _, err := nc.Write(msg); err != nil {
				return err
			}
			r := bufio.NewReaderSize(nc, 512)
			for { // INFO, then PONG once the PUB is parsed
				line, err := r.ReadString('\n')
				if err != nil {
					return err
				}
				if line == "PONG\r\n" {
					return nil
				}
			}
		})
	})
}

// TestLargeMQTTPublishReleasesMemory: the same for MQTT, whose parser and
// publish buffer must let go of a large PUBLISH.
func TestLargeMQTTPublishReleasesMemory(t *testing.T) {
	payload := bytes.Repeat([]byte("x"), memMsgSize)
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	pkt := func(first byte, body []byte) []byte {
		return append(mcodec.AppendRemainingLength([]byte{first}, len(body)), body...)
	}
	connect := append(str(nil, "MQTT"), 4, 0x02, 0, 60)
	connect = str(connect, "")
	msg := pkt(mcodec.CONNECT<<4, connect)
	msg = append(msg, pkt(mcodec.PUBLISH<<4, append(str(nil, "big"), payload...))...)
	msg = append(msg, mcodec.PINGREQ<<4, 0)
	eachTransport(t, loop.Options{MQTTPort: -1}, func(t *testing.T, s *loop.Server) {
		checkHeldMemory(t, s.MQTTAddr(), func(nc net.Conn) error {
			if _, err := nc.Write(msg); err != nil {
				return err
			}
			var in [6]byte // CONNACK (4 bytes), then PINGRESP (2)
			if _, err := io.ReadFull(nc, in[:]); err != nil {
				return err
			}
			if in[4] != mcodec.PINGRESP<<4 {
				return fmt.Errorf("got % x, want CONNACK then PINGRESP", in)
			}
			return nil
		})
	})
}

// TestLongSubjectCachesBounded: per-connection caches (publish permission
// decisions; on the goroutine transport, the match cache) keep neither
// many entries nor long subjects. Each of permConns clients publishes 1023
// unique ~4000-byte subjects; the issue measured 726 MB RSS for 100 clients
// when every decision was kept (nats-server: 80 MB).
func TestLongSubjectCachesBounded(t *testing.T) {
	const permConns, perConn = 20, 1023
	pad := strings.Repeat("x", 3990)
	o := loop.Options{Users: []*loop.User{{Username: "u", Password: "p", Permissions: &loop.Permissions{
		Publish: &loop.SubjectPermission{Allow: []string{"pub.>"}, Deny: []string{"pub.secret"}}}}}}
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		base := heapAfterGC()
		var wg sync.WaitGroup
		errs := make(chan error, permConns)
		for i := range permConns {
			nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
				w := bufio.NewWriterSize(nc, 64<<10)
				fmt.Fprintf(w, "CONNECT {\"user\":\"u\",\"pass\":\"p\",\"verbose\":false}\r\n")
				for j := range perConn {
					fmt.Fprintf(w, "PUB pub.%d.%d.%s 0\r\n\r\n", i, j, pad)
				}
				fmt.Fprintf(w, "PING\r\n")
				if err := w.Flush(); err != nil {
					errs <- err
					return
				}
				r := bufio.NewReaderSize(nc, 512)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						errs <- err
						return
					}
					if line == "PONG\r\n" {
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		held := int64(heapAfterGC()) - int64(base)
		t.Logf("%d clients x %d long subjects: heap +%d KB", permConns, perConn, held>>10)
		if held > 16<<20 { // every subject kept would be over 80 MB
			t.Fatalf("server holds %d MB of cached subjects for %d clients", held>>20, permConns)
		}
	})
}

package leaf_test

import (
	"bufio"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/leaf"
	"github.com/evnats/evnats/loop/looptest"
)

// stuckHub is a hub that completes the handshake, shows interest in
// slow.> and then reads nothing more.
func stuckHub(t *testing.T) (url string, connected <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			fmt.Fprintf(c, "INFO {\"server_id\":\"STUCK\",\"client_id\":1,\"info_on_connect\":true,\"leafnode_urls\":[],\"headers\":true}\r\n")
			br := bufio.NewReader(c)
			if _, err := br.ReadString('\n'); err != nil { // CONNECT
				continue
			}
			fmt.Fprintf(c, "LS+ slow.>\r\nPONG\r\n")
			ch <- struct{}{}
		}
	}()
	return "nats-leaf://" + l.Addr().String(), ch
}

// TestLeafSlowLinkDoesNotStall: a hub that stops reading is cut as a slow
// consumer once the bounded link buffer fills; local subscribers of the
// same subject get every message meanwhile, and the leaf reconnects.
func TestLeafSlowLinkDoesNotStall(t *testing.T) {
	defer leaf.SetMaxPending(1 << 20)()
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		url, connected := stuckHub(t)
		var log looptest.LogBuffer
		o.LogWriter = &log
		s := startLeaf(t, o, url)
		select {
		case <-connected:
		case <-time.After(10 * time.Second):
			t.Fatal("no link")
		}
		waitLeafSubs(t, s, 1-hubBase) // the stuck hub's one interest
		nc := connect(t, s.ClientURL())
		sub, _ := nc.SubscribeSync("slow.x")
		sub.SetPendingLimits(-1, -1)
		nc.Flush()
		payload := make([]byte, 32<<10)
		const n = 1000 // 32 MiB: far past the link's buffer and the sockets'
		start := time.Now()
		for range n {
			if err := nc.Publish("slow.x", payload); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			if _, err := sub.NextMsg(10 * time.Second); err != nil {
				t.Fatalf("local message %d: %v", i, err)
			}
		}
		t.Logf("%d local messages through in %v", n, time.Since(start))
		waitFor(t, "the slow link cut", func() bool { return contains(log.String(), "Slow Consumer Detected: leafnode") })
		select {
		case <-connected: // reconnected
		case <-time.After(10 * time.Second):
			t.Fatal("no reconnect after the cut")
		}
	})
}

// TestLeafHostileHub: a hub that sends nonsense gets its bad interest
// ignored and its link closed on a bad message; the leaf neither crashes
// nor stops serving locally, and says why in its log.
func TestLeafHostileHub(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	served := make(chan struct{}, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "INFO {\"server_id\":\"BAD\",\"client_id\":1,\"info_on_connect\":true,\"leafnode_urls\":[]}\r\n")
			br := bufio.NewReader(c)
			br.ReadString('\n')
			fmt.Fprintf(c, "LS+ \r\nLS+ foo bar\r\nLS+ foo..bar\r\nLS+ a b -1\r\nLS- nothing\r\nLS+ ok.x q 1\r\n"+
				"LMSG bad..subject 2\r\nhi\r\nPONG\r\nLMSG ok.x 99999999999\r\n")
			served <- struct{}{}
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	var log looptest.LogBuffer
	s := startLeaf(t, loop.Options{LogWriter: &log}, "nats-leaf://"+l.Addr().String())
	<-served
	waitFor(t, "the bad message in the log", func() bool { return contains(log.String(), "bad message from hub") })
	localService(t, s)
	<-served // reconnected
}

package loop

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestLoopStatsBusyLoopNotWoken: a scrape of the loop counters while
// messages flow is answered by the loops at the end of a read or flush,
// without a task (an eventfd write and a loop wakeup each) per loop; the
// figures still add up.
func TestLoopStatsBusyLoopNotWoken(t *testing.T) {
	s, err := New(Options{Host: "127.0.0.1", Port: -1, IO: IOGnet, Loops: 2, StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	sub, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := sub.Subscribe("x", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for range 100 {
				_ = pub.Publish("x", []byte("hello"))
			}
			_ = pub.Flush()
		}
	}()
	tasks := func() (n uint64) {
		for _, lp := range s.tr.(*gnetTransport).loops {
			n += lp.mon.pub.tasks.Load()
		}
		return n
	}
	quiet := 0 // scrapes that sent no task
	for i := 0; i < 50 && quiet < 5; i++ {
		before := tasks()
		st := s.Loops()
		if len(st) == 0 {
			t.Fatal("no loops")
		}
		if tasks() == before {
			quiet++
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-published
	if quiet == 0 {
		t.Fatalf("every scrape of busy loops sent them tasks (%d tasks)", tasks())
	}
	var reads, in uint64
	for _, l := range s.Loops() { // now idle: answered by tasks
		reads += l.Reads
		in += uint64(l.InMsgs)
	}
	if reads == 0 || in == 0 {
		t.Fatalf("reads %d in_msgs %d after traffic", reads, in)
	}
}

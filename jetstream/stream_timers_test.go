package jetstream_test

import (
	"errors"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// TestStreamTimersNeedNoTick runs a server whose periodic tick never
// fires (an hour) and checks that streams' timed work still comes at its
// deadline: a message's Nats-TTL, max_age, the duplicate window, and a
// source whose origin is created after it. With streams on the tick, none
// of them would happen.
func TestStreamTimersNeedNoTick(t *testing.T) {
	defer jetstream.SetStreamTick(time.Hour)()
	s := startJS(t, loop.Options{Loops: 2})
	nc, js := connectJS(t, s)
	c := ctx(t)
	gone := func(st njs.Stream, seq uint64, start time.Time, within time.Duration) time.Duration {
		t.Helper()
		for {
			_, err := st.GetMsg(c, seq)
			if errors.Is(err, njs.ErrMsgNotFound) {
				return time.Since(start)
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Since(start) > within {
				t.Fatalf("message %d still there after %v", seq, within)
			}
			time.Sleep(20 * time.Millisecond) // polling: an expiry sends nothing a client sees
		}
	}

	ttl, err := js.CreateStream(c, njs.StreamConfig{Name: "TTL", Subjects: []string{"ttl.>"}, AllowMsgTTL: true})
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("ttl.a")
	m.Header.Set("Nats-TTL", "1s")
	sent := time.Now() // before the message's stored time, so the TTL cannot look short however slow the ack
	if _, err := js.PublishMsg(c, m); err != nil {
		t.Fatal(err)
	}
	if d := gone(ttl, 1, sent, 5*time.Second); d < 950*time.Millisecond {
		t.Fatalf("a 1 s TTL expired after %v", d)
	}

	aged, err := js.CreateStream(c, njs.StreamConfig{Name: "AGE", Subjects: []string{"age.>"}, MaxAge: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "age.a", nil); err != nil {
		t.Fatal(err)
	}
	gone(aged, 1, time.Now(), 5*time.Second)

	if _, err := js.CreateStream(c, njs.StreamConfig{Name: "DUP", Subjects: []string{"dup.>"}, Duplicates: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if a, err := js.Publish(c, "dup.a", nil, njs.WithMsgID("x")); err != nil || a.Duplicate {
		t.Fatal(a, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		a, err := js.Publish(c, "dup.a", nil, njs.WithMsgID("x"))
		if err != nil {
			t.Fatal(err)
		}
		if !a.Duplicate {
			break // the window has passed: the id was forgotten
		}
		if time.Now().After(deadline) {
			t.Fatal("the id was still a duplicate 5 s after a 300 ms window")
		}
		time.Sleep(50 * time.Millisecond) // polling: forgetting sends nothing a client sees
	}

	src, err := js.CreateStream(c, njs.StreamConfig{Name: "SRC", Sources: []*njs.StreamSource{{Name: "LATER"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(c, njs.StreamConfig{Name: "LATER", Subjects: []string{"later.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "later.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, err := src.GetMsg(c, 1); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the source did not copy from an origin created after it")
		}
		time.Sleep(20 * time.Millisecond) // polling: copying sends nothing a client sees
	}
	_ = nc
}

// TestIdleStreamsDoNotWake checks that a Manager whose streams wait for
// nothing does not wake for them (it used to run their timed work every
// 50 ms), and that one whose stream has a source looks at its links about
// once a second.
func TestIdleStreamsDoNotWake(t *testing.T) {
	s := startJS(t, loop.Options{Loops: 1})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, njs.StreamConfig{Name: "IDLE", Subjects: []string{"idle.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(c, "idle.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // settle: the creation's own look at links
	before := jetstream.StreamTicks()
	time.Sleep(time.Second) // measuring that nothing happens
	if n := jetstream.StreamTicks() - before; n > 0 {
		t.Fatalf("idle streams ran their timed work %d times in 1 s", n)
	}

	if _, err := js.CreateStream(c, njs.StreamConfig{Name: "COPY", Sources: []*njs.StreamSource{{Name: "IDLE"}}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	before = jetstream.StreamTicks()
	time.Sleep(2 * time.Second)
	if n := jetstream.StreamTicks() - before; n < 1 || n > 4 {
		t.Fatalf("with a source, streams' timed work ran %d times in 2 s, want about 2", n)
	}
}

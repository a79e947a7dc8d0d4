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

// waitGone polls until message seq of st is gone, failing after within.
func waitGone(t *testing.T, st njs.Stream, seq uint64, within time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		_, err := st.GetMsg(ctx(t), seq)
		if errors.Is(err, njs.ErrMsgNotFound) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > within {
			t.Fatalf("message %d of %s still there after %v", seq, st.CachedInfo().Config.Name, within)
		}
		time.Sleep(20 * time.Millisecond) // polling: an expiry sends nothing a client sees
	}
}

// TestStreamDeadlinesAfterChanges: with the periodic tick an hour long,
// deadlines that a config update, a purge or a restart bring forward
// still come: max_age set by an update on messages already stored, a
// duplicate window shortened by an update, a TTL published after a
// purge, TTL and max_age expired while the server was down, and a
// schedule that fires again after a restart; on memory and file streams.
func TestStreamDeadlinesAfterChanges(t *testing.T) {
	defer jetstream.SetStreamTick(time.Hour)()
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir})
	nc, js := connectJS(t, s)
	c := ctx(t)
	for _, storage := range []njs.StorageType{njs.MemoryStorage, njs.FileStorage} {
		name := "UPD" + storage.String()
		cfg := njs.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: storage, AllowMsgTTL: true, Duplicates: time.Hour}
		st, err := js.CreateStream(c, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish(c, name+".a", []byte("x"), njs.WithMsgID("id")); err != nil {
			t.Fatal(err)
		}
		cfg.MaxAge, cfg.Duplicates = 400*time.Millisecond, 300*time.Millisecond
		if st, err = js.UpdateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
		waitGone(t, st, 1, 3*time.Second)
		if a, err := js.Publish(c, name+".a", []byte("x"), njs.WithMsgID("id")); err != nil || a.Duplicate {
			t.Fatalf("%s: the id outlived the shortened window: %+v %v", name, a, err)
		}
		if err := st.Purge(c); err != nil {
			t.Fatal(err)
		}
		cfg.MaxAge = 0
		if st, err = js.UpdateStream(c, cfg); err != nil {
			t.Fatal(err)
		}
		m := nats.NewMsg(name + ".b")
		m.Header.Set("Nats-TTL", "1s")
		a, err := js.PublishMsg(c, m)
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, st, a.Sequence, 3*time.Second)
	}

	// Down while things expire and a schedule is due.
	cfg := njs.StreamConfig{Name: "DOWN", Subjects: []string{"down.>"}, AllowMsgTTL: true, AllowMsgSchedules: true, MaxAge: time.Hour}
	if _, err := js.CreateStream(c, cfg); err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg("down.ttl")
	m.Header.Set("Nats-TTL", "1s")
	if _, err := js.PublishMsg(c, m); err != nil {
		t.Fatal(err)
	}
	m = nats.NewMsg("down.sched")
	m.Header.Set("Nats-Schedule", "@every 1s")
	m.Header.Set("Nats-Schedule-Target", "down.out")
	if _, err := js.PublishMsg(c, m); err != nil {
		t.Fatal(err)
	}
	nc.Close()
	s.Shutdown()
	time.Sleep(1500 * time.Millisecond) // the TTL and the schedule come due while the server is down
	s = startJS(t, loop.Options{StoreDir: dir})
	_, js = connectJS(t, s)
	st, err := js.Stream(c, "DOWN")
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, st, 1, 2*time.Second)
	deadline := time.Now().Add(3 * time.Second)
	for fired := 0; fired < 2; {
		mm, err := st.GetLastMsgForSubject(c, "down.out")
		if err == nil && mm.Sequence > uint64(2+fired) {
			fired++
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("the schedule fired %d times in 3 s after the restart", fired)
		}
		time.Sleep(50 * time.Millisecond) // polling: a firing sends nothing a client sees
	}
}

// TestLateTimerDoesNotDrift: when the Manager is busy as a deadline
// passes, the timed work it does afterwards is done at the time it runs,
// not at the time the timer was due (what the timer's channel carries):
// a second message whose max_age passed during the busy spell goes with
// the first, not a whole late spell after it.
func TestLateTimerDoesNotDrift(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, js := connectJS(t, s)
	c := ctx(t)
	st, err := js.CreateStream(c, njs.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}, Storage: njs.MemoryStorage, MaxAge: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if _, err := js.Publish(c, "late.a", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // the second message's max_age comes 0.7 s after the first's: how late a drifting timer would take it
	if _, err := js.Publish(c, "late.b", nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(t0.Add(900 * time.Millisecond))) // just before the first expires
	defer jetstream.SetAPIHandlerDelay("$JS.API.INFO", 1600*time.Millisecond)()
	if _, err := nc.Request("$JS.API.INFO", nil, 5*time.Second); err != nil { // holds the Manager past both deadlines
		t.Fatal(err)
	}
	busyEnd := time.Now()
	waitGone(t, st, 2, 5*time.Second)
	if late := time.Since(busyEnd); late > 400*time.Millisecond {
		t.Fatalf("the second message went %v after the Manager was free again; both were due", late)
	}
}

package jetstream

import (
	"strconv"
	"testing"
	"time"
)

// newTimerManager is a Manager that is never started (no timer, no
// goroutine) for fake-clock tests of the streams' deadlines: streams are
// added as on recovery, in memory.
func newTimerManager(t *testing.T) *Manager {
	t.Helper()
	return &Manager{host: &clockHost{noInterest: map[string]bool{}}, streams: map[string]*stream{}, subjects: newSubjectIndex(),
		recovering: true, cfg: Config{Errorf: func(f string, a ...any) { t.Errorf(f, a...) }}}
}

func (m *Manager) addTestStream(t *testing.T, cfg StreamConfig) *stream {
	t.Helper()
	cfg.Storage = "memory"
	if e := normalize(&cfg); e != nil {
		t.Fatal(e)
	}
	st, err := m.addStream(cfg, t0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// armedLate fails the test when a stream's next deadline comes before
// what the Manager is armed for (streamsAt): that deadline would pass
// unnoticed until something else wakes the Manager.
func armedLate(t *testing.T, m *Manager, now time.Time, what string) {
	t.Helper()
	for name, st := range m.streams {
		if d := overdue(st.headDeadline(), now); !d.IsZero() && (m.streamsAt.IsZero() || m.streamsAt.After(d)) {
			t.Fatalf("%s: stream %s waits for %v, the Manager is armed for %v", what, name, d.Sub(t0), m.streamsAt.Sub(t0))
		}
	}
}

// TestSourceCopyDuringTickIsArmed: a stream whose timed work stores a
// message (a schedule firing) feeds the streams that source it during
// tickStreams. A source stream ticked before its origin in that round
// gets a message under max_age after its own deadline was computed; its
// expiry must still be armed, not left for the next look at the links a
// second later (tickStreams used to forget every stream touched during
// the round).
func TestSourceCopyDuringTickIsArmed(t *testing.T) {
	for trial := range 20 { // map order decides whether B is ticked before A: in some trials it is
		m := newTimerManager(t)
		a := m.addTestStream(t, StreamConfig{Name: "A", Subjects: []string{"a.>"}, AllowMsgSchedules: true})
		b := m.addTestStream(t, StreamConfig{Name: "B", Sources: []*StreamSource{{Name: "A"}}, MaxAge: 100 * time.Millisecond, AllowRollup: true})
		now := t0
		m.tick(now)
		a.publish("a.sched", "", hdr("Nats-Schedule: @every 1s", "Nats-Schedule-Target: a.out"), nil, now)
		m.afterStore(a, now)
		now = now.Add(200 * time.Millisecond)
		m.tick(now) // B's copy of the schedule went at 100 ms
		if n := b.store.State().Msgs; n != 0 {
			t.Fatalf("trial %d: B holds %d messages at 200 ms", trial, n)
		}
		now = t0.Add(time.Second)
		m.tick(now) // fires: a.out is stored in A and copied to B
		if n := b.store.State().Msgs; n != 1 {
			t.Fatalf("trial %d: B holds %d messages after the firing, want its copy", trial, n)
		}
		armedLate(t, m, now, "trial "+strconv.Itoa(trial)+", after the firing")
	}
}

// TestArmDeadlineAfterNeverHead: arming after a step (armDeadline) with a
// "Nats-TTL: never" message at the head of a max_age stream looks at the
// first message after it; when many messages after it were removed by
// other means (deletes, limits, a KV's history), that look must not walk
// the removed sequences again on every publish.
func TestArmDeadlineAfterNeverHead(t *testing.T) {
	r := newStreamRig(t, StreamConfig{MaxAge: time.Hour, AllowMsgTTL: true})
	r.ok("s.never", hdr("Nats-TTL: never"), "x", 1)
	r.at(time.Hour + time.Second) // the never message is passed over: ageFrom 2
	const n = 200_000
	for range n {
		r.st.publish("s.a", "", nil, nil, r.now)
		r.st.ready()
	}
	for seq := uint64(2); seq <= n; seq++ { // all but the last
		r.st.remove(seq, "s.a")
	}
	r.st.armDeadline(r.now) // the first walks the gap once
	start := time.Now()
	const arms = 100
	var at time.Time
	for range arms {
		at = r.st.armDeadline(r.now)
	}
	per := time.Since(start) / arms
	if want := r.now.Add(time.Hour); !at.Equal(want) {
		t.Fatalf("armed for %v, want %v", at.Sub(t0), want.Sub(t0))
	}
	if per > 500*time.Microsecond { // O(1): well under; walking the gap: milliseconds
		t.Fatalf("arming took %v per step with %d removed sequences after the head", per, n)
	}
}

package jetstream

// Consumer timing on a fake clock: the state machine (consumer_core.go)
// and the Manager's performing of its effects, driven on the test's
// goroutine with no Manager goroutine, no ticker and no socket. Each test
// moves the clock by hand, so it runs in microseconds and the same way
// every time.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// sent is one message the fake host was given.
type sent struct {
	to, subject, reply string
	hdr, data          string
}

// clockHost records what the Manager publishes and delivers; everyone
// subscribes to everything (interest is true) unless noInterest says.
type clockHost struct {
	out        []sent
	noInterest map[string]bool
	full       int // Deliver reports the destination full after this many more (0: never)
}

func (h *clockHost) Subscribe(string, func(subject, reply string, hdr, data []byte)) func() {
	return func() {}
}
func (h *clockHost) Publish(subject, reply string, hdr, data []byte) {
	h.out = append(h.out, sent{to: subject, subject: subject, reply: reply, hdr: string(hdr), data: string(data)})
}
func (h *clockHost) Deliver(to, subject, reply string, hdr, data []byte, _ func()) bool {
	h.out = append(h.out, sent{to: to, subject: subject, reply: strings.Clone(reply), hdr: string(hdr), data: string(data)})
	if h.full > 0 {
		h.full--
		return h.full > 0
	}
	return true
}
func (h *clockHost) Interest(subject string) bool { return !h.noInterest[subject] }

// take returns what was sent since the last take.
func (h *clockHost) take() []sent {
	out := h.out
	h.out = nil
	return out
}

// clockRig is one memory stream "S" on subjects "s.>" with one consumer
// "C", a Manager that is never started, and a clock at t0.
type clockRig struct {
	t   *testing.T
	m   *Manager
	h   *clockHost
	st  *stream
	c   *consumer
	now time.Time
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newClockRig(t *testing.T, cfg ConsumerConfig) *clockRig {
	t.Helper()
	scfg := StreamConfig{Name: "S", Subjects: []string{"s.>"}, Storage: "memory"}
	if e := normalize(&scfg); e != nil {
		t.Fatal(e)
	}
	if cfg.Name == "" && cfg.Durable == "" {
		cfg.Durable = "C"
	}
	if e := normalizeConsumer(&cfg); e != nil {
		t.Fatal(e)
	}
	h := &clockHost{noInterest: map[string]bool{}}
	m := &Manager{host: h, streams: map[string]*stream{}, subjects: newSubjectIndex(),
		cfg: Config{Errorf: func(f string, a ...any) { t.Errorf(f, a...) }}}
	st := &stream{cfg: scfg, store: store.NewMemStore(), dedupe: map[string]dedupeEntry{},
		perSubj: map[string]uint64{}, consumers: map[string]*consumer{}}
	m.streams["S"] = st
	name := cfg.Durable
	if name == "" {
		name = cfg.Name
	}
	c := m.newConsumer(st, name, cfg, t0, t0)
	c.start()
	return &clockRig{t: t, m: m, h: h, st: st, c: c, now: t0}
}

// at moves the clock to t0+d (never back) and ticks, as the Manager's
// ticker would.
func (r *clockRig) at(d time.Duration) []sent {
	r.t.Helper()
	if t := t0.Add(d); t.Before(r.now) {
		r.t.Fatalf("clock moved back to %v", d)
	} else {
		r.now = t
	}
	r.m.tick(r.now)
	return r.h.take()
}

// publish stores n messages and returns what they made the consumer send.
func (r *clockRig) publish(n int) []sent {
	r.t.Helper()
	for i := 0; i < n; i++ {
		res := r.st.storeMsg(fmt.Sprintf("s.%d", i), nil, []byte("x"), r.now, false, nil)
		if !res.pending {
			r.t.Fatalf("store: %+v", res.ack)
		}
		r.m.afterStore(r.st, r.now)
	}
	return r.h.take()
}

// pull sends a MSG.NEXT body from inbox and returns what came back at once.
func (r *clockRig) pull(inbox, body string) []sent {
	r.t.Helper()
	r.m.nextRequest("S", r.c.name, &request{reply: inbox, data: []byte(body)}, r.now)
	return r.h.take()
}

func (r *clockRig) ack(sseq uint64, body string) []sent {
	r.m.ack(r.c, sseq, []byte(body), r.now, nil)
	return r.h.take()
}

func (r *clockRig) info() *ConsumerInfo { return r.c.info(r.now) }

// deliveries are the stream messages among out, as "sseq/deliveries".
func deliveries(out []sent) []string {
	var d []string
	for _, s := range out {
		if strings.HasPrefix(s.reply, "$JS.ACK.") {
			tok := strings.Split(s.reply, ".")
			d = append(d, tok[5]+"/"+tok[4])
		}
	}
	return d
}

// statuses are the status lines among out, as "to code".
func statuses(out []sent) []string {
	var d []string
	for _, s := range out {
		if strings.HasPrefix(s.hdr, "NATS/1.0 ") && s.reply == "" && !strings.HasPrefix(s.to, "$JS.EVENT.") {
			line, _, _ := strings.Cut(s.hdr[len("NATS/1.0 "):], "\r\n")
			d = append(d, s.to+" "+line)
		}
	}
	return d
}

// advisories are the advisory subjects among out.
func advisories(out []sent) []string {
	var d []string
	for _, s := range out {
		if strings.HasPrefix(s.to, "$JS.EVENT.ADVISORY.") {
			d = append(d, strings.TrimPrefix(s.to, "$JS.EVENT.ADVISORY."))
		}
	}
	return d
}

func same(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestCoreAckWaitRedelivery: the tick alone, without a Manager: a delivery
// is due again only once now is after its deadline, is queued once, and
// the step asks for a pump and reports the next deadline.
func TestCoreAckWaitRedelivery(t *testing.T) {
	c := &consumer{cfg: ConsumerConfig{AckPolicy: "explicit", AckWait: time.Second, MaxDeliver: -1},
		pending: map[uint64]*pendingAck{
			7: {dseq: 1, deliveries: 1, deadline: t0.Add(time.Second)},
			9: {dseq: 2, deliveries: 1, deadline: t0.Add(3 * time.Second)},
		}}
	steps := []struct {
		at      time.Duration
		redeliv []uint64
		pump    bool
		wake    time.Duration
	}{
		{500 * time.Millisecond, nil, false, time.Second + 1},
		{time.Second, nil, false, time.Second + 1}, // at the deadline: not yet
		{time.Second + 1, []uint64{7}, true, 3*time.Second + 1},
		{2 * time.Second, []uint64{7}, false, 3*time.Second + 1}, // queued once
		{4 * time.Second, []uint64{7, 9}, true, 0},
	}
	for _, s := range steps {
		c.tick(t0.Add(s.at))
		fx := c.ready()
		if fmt.Sprint(c.redeliv) != fmt.Sprint(s.redeliv) && !(len(c.redeliv) == 0 && len(s.redeliv) == 0) {
			t.Fatalf("at %v: redeliveries %v, want %v", s.at, c.redeliv, s.redeliv)
		}
		if fx.pump != s.pump {
			t.Fatalf("at %v: pump %v, want %v", s.at, fx.pump, s.pump)
		}
		var wake time.Duration
		if !fx.wake.IsZero() {
			wake = fx.wake.Sub(t0)
		}
		if wake != s.wake {
			t.Fatalf("at %v: wake at %v, want %v", s.at, wake, s.wake)
		}
	}
}

// TestClockAckWaitRedelivery: an unacked message comes again after
// ack_wait, with its delivery count in the ack subject, and not before; an
// ack ends it.
func TestClockAckWaitRedelivery(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{AckWait: 2 * time.Second})
	r.publish(1)
	if got := deliveries(r.pull("in.1", `{"batch":5,"expires":60000000000}`)); !same(got, []string{"1/1"}) {
		t.Fatalf("first pull: %v", got)
	}
	if got := deliveries(r.at(2 * time.Second)); got != nil {
		t.Fatalf("redelivered at the ack wait, not after it: %v", got)
	}
	if got := deliveries(r.at(2*time.Second + time.Millisecond)); !same(got, []string{"1/2"}) {
		t.Fatalf("after the ack wait: %v", got)
	}
	if i := r.info(); i.NumRedelivered != 1 || i.NumAckPending != 1 {
		t.Fatalf("info: redelivered %d, ack pending %d", i.NumRedelivered, i.NumAckPending)
	}
	r.ack(1, "+ACK")
	if got := deliveries(r.at(time.Minute)); got != nil {
		t.Fatalf("redelivered after its ack: %v", got)
	}
	if i := r.info(); i.NumAckPending != 0 || i.AckFloor.Stream != 1 {
		t.Fatalf("after the ack: %+v", i)
	}
}

// TestClockBackoff: each redelivery waits the backoff entry of its
// delivery count, the last one repeating; a +WPI restarts the current wait.
func TestClockBackoff(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{BackOff: []time.Duration{time.Second, 5 * time.Second, 10 * time.Second}})
	if r.c.cfg.AckWait != time.Second {
		t.Fatalf("ack_wait %v, want the first backoff", r.c.cfg.AckWait)
	}
	r.publish(1)
	r.pull("in.1", `{"batch":10,"expires":3600000000000}`)
	at := time.Duration(0)
	for i, wait := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second} {
		if got := deliveries(r.at(at + wait - time.Millisecond)); got != nil {
			t.Fatalf("delivery %d came %v early: %v", i+2, time.Millisecond, got)
		}
		at += wait + time.Millisecond
		if got := deliveries(r.at(at)); !same(got, []string{fmt.Sprintf("1/%d", i+2)}) {
			t.Fatalf("after backoff %v: %v", wait, got)
		}
	}
	// +WPI half way through the 10 s wait: another 10 s from then.
	r.at(at + 5*time.Second)
	r.ack(1, "+WPI")
	if got := deliveries(r.at(at + 11*time.Second)); got != nil {
		t.Fatalf("redelivered despite +WPI: %v", got)
	}
	if got := deliveries(r.at(at + 15*time.Second + time.Millisecond)); !same(got, []string{"1/6"}) {
		t.Fatalf("after +WPI's wait: %v", got)
	}
}

// TestClockMaxDeliver: after max_deliver deliveries and one more ack wait
// the message is given up: one MAX_DELIVERIES advisory, no delivery, and
// it leaves pending (as nats-server 2.15), freeing max_ack_pending.
func TestClockMaxDeliver(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{AckWait: time.Second, MaxDeliver: 2, MaxAckPending: 1})
	r.publish(2)
	if got := deliveries(r.pull("in.1", `{"batch":10,"expires":3600000000000}`)); !same(got, []string{"1/1"}) {
		t.Fatalf("first: %v (max_ack_pending 1)", got)
	}
	if got := deliveries(r.at(time.Second + 1)); !same(got, []string{"1/2"}) {
		t.Fatalf("second: %v", got)
	}
	out := r.at(2*time.Second + 2)
	if got := advisories(out); !same(got, []string{"CONSUMER.MAX_DELIVERIES.S.C"}) {
		t.Fatalf("advisories %v", got)
	}
	var adv maxDeliverAdvisory
	for _, s := range out {
		if strings.HasPrefix(s.to, advMaxDeliveries) {
			if err := json.Unmarshal([]byte(s.data), &adv); err != nil {
				t.Fatal(err)
			}
		}
	}
	if adv.StreamSeq != 1 || adv.Deliveries != 2 || adv.Type != typeMaxDeliver {
		t.Fatalf("advisory %+v", adv)
	}
	if got := deliveries(out); !same(got, []string{"2/1"}) {
		t.Fatalf("the next message should take the freed slot: %v", got)
	}
	if i := r.info(); i.NumAckPending != 1 || i.AckFloor.Stream != 1 {
		t.Fatalf("message 1 still pending: ack pending %d, floor %+v", i.NumAckPending, i.AckFloor)
	}
	r.ack(2, "+ACK")
	if out := r.at(time.Hour); len(advisories(out)) != 0 || len(deliveries(out)) != 0 {
		t.Fatalf("after giving up: %v", out)
	}
}

// TestClockNakPastMaxDeliver: a NAK of the last allowed delivery gets its
// NAK advisory; the MAX_DELIVERIES advisory comes at the next delivery
// attempt, which skips the message and drops it from pending.
func TestClockNakPastMaxDeliver(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{MaxDeliver: 1})
	r.publish(2)
	if got := deliveries(r.pull("in.1", "")); !same(got, []string{"1/1"}) {
		t.Fatalf("first: %v", got)
	}
	out := r.ack(1, "-NAK")
	if got := advisories(out); !same(got, []string{"CONSUMER.MSG_NAKED.S.C"}) {
		t.Fatalf("on the NAK: %v", got)
	}
	out = r.pull("in.2", "")
	if got := advisories(out); !same(got, []string{"CONSUMER.MAX_DELIVERIES.S.C"}) {
		t.Fatalf("at the next attempt: %v", got)
	}
	if got := deliveries(out); !same(got, []string{"2/1"}) {
		t.Fatalf("next attempt delivered %v", got)
	}
	if i := r.info(); i.NumAckPending != 1 || i.AckFloor.Stream != 1 {
		t.Fatalf("after the drop: ack pending %d, floor %+v", i.NumAckPending, i.AckFloor)
	}
}

// TestClockNakDelay: -NAK with a delay redelivers after the delay, not at
// once and not after the ack wait.
func TestClockNakDelay(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{AckWait: time.Minute})
	r.publish(1)
	r.pull("in.1", `{"batch":10,"expires":3600000000000}`)
	r.at(time.Second)
	r.ack(1, `-NAK {"delay":3000000000}`)
	if got := deliveries(r.at(4 * time.Second)); got != nil {
		t.Fatalf("before the delay: %v", got)
	}
	if got := deliveries(r.at(4*time.Second + 1)); !same(got, []string{"1/2"}) {
		t.Fatalf("after the delay: %v", got)
	}
}

// TestClockPullExpiry: a pull request waits until its expires, then ends
// with 408 and what it still wanted; num_waiting counts it until then.
func TestClockPullExpiry(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{})
	r.publish(1)
	r.pull("in.1", `{"batch":5,"max_bytes":1000,"expires":2000000000}`)
	if n := r.info().NumWaiting; n != 1 {
		t.Fatalf("num_waiting %d, want 1", n)
	}
	if out := r.at(2*time.Second - 1); len(out) != 0 {
		t.Fatalf("before expiry: %v", out)
	}
	out := r.at(2 * time.Second)
	if got := statuses(out); !same(got, []string{"in.1 408 Request Timeout"}) {
		t.Fatalf("at expiry: %v", got)
	}
	if !strings.Contains(out[0].hdr, "Nats-Pending-Messages: 4\r\nNats-Pending-Bytes: 996\r\n") {
		t.Fatalf("408 headers %q", out[0].hdr)
	}
	if n := r.info().NumWaiting; n != 0 {
		t.Fatalf("num_waiting %d after expiry", n)
	}
	// no_wait with nothing to deliver: 404 at once.
	if got := statuses(r.pull("in.2", `{"batch":1,"no_wait":true}`)); !same(got, []string{"in.2 404 No Messages"}) {
		t.Fatalf("no_wait: %v", got)
	}
}

// TestClockIdleHeartbeat: a pull with idle_heartbeat gets a heartbeat each
// period without a delivery, with the consumer's position; a delivery
// restarts the period.
func TestClockIdleHeartbeat(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{})
	r.pull("in.1", `{"batch":5,"expires":10000000000,"idle_heartbeat":1000000000}`)
	if out := r.at(999 * time.Millisecond); len(out) != 0 {
		t.Fatalf("early heartbeat: %v", out)
	}
	out := r.at(time.Second)
	if got := statuses(out); !same(got, []string{"in.1 100 Idle Heartbeat"}) {
		t.Fatalf("heartbeat: %v", got)
	}
	if !strings.Contains(out[0].hdr, "Nats-Last-Consumer: 0\r\nNats-Last-Stream: 0\r\n") {
		t.Fatalf("heartbeat headers %q", out[0].hdr)
	}
	r.at(1500 * time.Millisecond)
	if got := deliveries(r.publish(1)); !same(got, []string{"1/1"}) { // delivered at 1.5 s
		t.Fatalf("delivery to the waiting pull: %v", got)
	}
	if out := r.at(2400 * time.Millisecond); len(out) != 0 {
		t.Fatalf("heartbeat within a period of a delivery: %v", out)
	}
	out = r.at(2500 * time.Millisecond)
	if got := statuses(out); !same(got, []string{"in.1 100 Idle Heartbeat"}) || !strings.Contains(out[0].hdr, "Nats-Last-Consumer: 1\r\nNats-Last-Stream: 1\r\n") {
		t.Fatalf("second heartbeat: %v", out)
	}
}

// TestClockPushHeartbeat: a push consumer's idle_heartbeat goes to its
// deliver subject.
func TestClockPushHeartbeat(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{DeliverSubject: "push.in", Heartbeat: 5 * time.Second})
	if got := statuses(r.at(5 * time.Second)); !same(got, []string{"push.in 100 Idle Heartbeat"}) {
		t.Fatalf("push heartbeat: %v", got)
	}
}

// TestClockInactiveThreshold: an ephemeral consumer goes once idle past
// its inactive_threshold (default 5 s), with a DELETED advisory; a waiting
// request or an ack keeps it.
func TestClockInactiveThreshold(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{Name: "E"})
	if r.c.cfg.InactiveThreshold != defaultInactive {
		t.Fatalf("inactive_threshold %v", r.c.cfg.InactiveThreshold)
	}
	r.pull("in.1", `{"batch":1,"expires":8000000000}`)
	if r.at(7 * time.Second); r.st.consumers["E"] == nil {
		t.Fatal("deleted while a request waited")
	}
	r.at(8 * time.Second) // the request expires: idle from here
	r.publish(1)
	r.pull("in.2", `{"batch":1,"no_wait":true}`) // delivers at once, ends
	r.at(12 * time.Second)
	r.ack(1, "+ACK")
	if r.at(17 * time.Second); r.st.consumers["E"] == nil {
		t.Fatal("deleted 5 s after an ack")
	}
	out := r.at(17*time.Second + 1)
	if r.st.consumers["E"] != nil {
		t.Fatal("not deleted past its threshold")
	}
	if got := advisories(out); !same(got, []string{"CONSUMER.DELETED.S.E"}) {
		t.Fatalf("advisories %v", got)
	}
}

// TestClockPushInactive: a push consumer's threshold counts from the last
// time its deliver subject had a subscriber.
func TestClockPushInactive(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{Name: "P", DeliverSubject: "push.in", InactiveThreshold: time.Second})
	r.at(10 * time.Second)
	if r.st.consumers["P"] == nil {
		t.Fatal("deleted while subscribed")
	}
	r.h.noInterest["push.in"] = true
	r.at(11 * time.Second)
	if r.st.consumers["P"] == nil {
		t.Fatal("deleted at the threshold")
	}
	if r.at(11*time.Second + 1); r.st.consumers["P"] != nil {
		t.Fatal("not deleted past the threshold")
	}
}

// TestClockPauseUntil: a paused consumer queues requests and delivers
// nothing; the tick after pause_until sends the PAUSE advisory and serves
// them. info reports the pause and what remains of it.
func TestClockPauseUntil(t *testing.T) {
	until := t0.Add(3 * time.Second)
	r := newClockRig(t, ConsumerConfig{PauseUntil: &until})
	r.publish(2)
	if got := deliveries(r.pull("in.1", `{"batch":5,"expires":60000000000}`)); got != nil {
		t.Fatalf("delivered while paused: %v", got)
	}
	r.at(time.Second)
	if i := r.info(); !i.Paused || i.PauseRemaining != 2*time.Second {
		t.Fatalf("info paused %v remaining %v", i.Paused, i.PauseRemaining)
	}
	if out := r.at(3*time.Second - 1); len(deliveries(out)) != 0 || len(advisories(out)) != 0 {
		t.Fatalf("before pause_until: %v", out)
	}
	out := r.at(3 * time.Second)
	if got := advisories(out); !same(got, []string{"CONSUMER.PAUSE.S.C"}) {
		t.Fatalf("advisories %v", got)
	}
	if got := deliveries(out); !same(got, []string{"1/1", "2/1"}) {
		t.Fatalf("after the pause: %v", got)
	}
	if i := r.info(); i.Paused {
		t.Fatal("still paused")
	}
}

// TestClockLastActive: delivered.last_active is the last delivery's time,
// ack_floor.last_active the last ack's; both absent before.
func TestClockLastActive(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{})
	if i := r.info(); i.Delivered.Last != nil || i.AckFloor.Last != nil {
		t.Fatalf("last_active before anything: %v %v", i.Delivered.Last, i.AckFloor.Last)
	}
	r.publish(1)
	r.at(time.Second)
	r.pull("in.1", "")
	r.at(3 * time.Second)
	r.ack(1, "+ACK")
	i := r.info()
	if i.Delivered.Last == nil || !i.Delivered.Last.Equal(t0.Add(time.Second)) {
		t.Fatalf("delivered.last_active %v", i.Delivered.Last)
	}
	if i.AckFloor.Last == nil || !i.AckFloor.Last.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("ack_floor.last_active %v", i.AckFloor.Last)
	}
}

// TestClockPinTimeout: a pinned_client pin goes when priority_timeout
// passes without a pull carrying it (UNPINNED advisory, reason timeout); a
// pull with the pin id keeps it.
func TestClockPinTimeout(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{PriorityPolicy: policyPinned, PriorityGroups: []string{"g"}, PinnedTTL: 2 * time.Second})
	r.publish(1)
	out := r.pull("in.1", `{"batch":1,"group":"g"}`)
	if got := advisories(out); !same(got, []string{"CONSUMER.PINNED.S.C"}) {
		t.Fatalf("advisories %v", got)
	}
	if r.c.pin == "" || len(deliveries(out)) != 1 || !strings.Contains(out[0].hdr, "Nats-Pin-Id: "+r.c.pin) {
		t.Fatalf("pinned delivery %v", out)
	}
	r.at(1500 * time.Millisecond)
	r.pull("in.2", `{"batch":1,"group":"g","id":"`+r.c.pin+`","expires":60000000000}`) // renews to 3.5 s
	if out := r.at(3500*time.Millisecond - 1); len(advisories(out)) != 0 {
		t.Fatalf("unpinned early: %v", out)
	}
	out = r.at(3500 * time.Millisecond)
	if got := advisories(out); !same(got, []string{"CONSUMER.UNPINNED.S.C"}) || r.c.pin != "" {
		t.Fatalf("at the timeout: %v, pin %q", got, r.c.pin)
	}
	if !strings.Contains(out[0].data, `"reason":"timeout"`) {
		t.Fatalf("advisory %s", out[0].data)
	}
}

// TestCoreNextDelivery: the delivery step alone decides nothing may go
// while the consumer is paused, held, without interest or at
// max_ack_pending, and moves the state past what it hands out.
func TestCoreNextDelivery(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{MaxAckPending: 2})
	for i := 0; i < 3; i++ {
		r.st.storeMsg("s.x", nil, []byte("x"), r.now, false, nil)
	}
	c := r.c
	if _, ok := c.nextDelivery(r.now, true); ok {
		t.Fatal("delivered with no request waiting")
	}
	c.request("in.1", []byte(`{"batch":10,"expires":60000000000}`), r.now)
	if _, ok := c.nextDelivery(r.now, false); ok {
		t.Fatal("delivered without interest")
	}
	c.held = true
	if _, ok := c.nextDelivery(r.now, true); ok {
		t.Fatal("delivered while held")
	}
	c.held = false
	until := r.now.Add(time.Second)
	c.cfg.PauseUntil = &until
	if _, ok := c.nextDelivery(r.now, true); ok {
		t.Fatal("delivered while paused")
	}
	c.cfg.PauseUntil = nil
	for want := uint64(1); want <= 2; want++ {
		d, ok := c.nextDelivery(r.now, true)
		if !ok || d.seq != want || d.to != "in.1" || d.subject != "s.x" ||
			d.reply != fmt.Sprintf("$JS.ACK.S.C.1.%d.%d.%d.%d", want, want, r.now.UnixNano(), 3-want) {
			t.Fatalf("delivery %d: %+v %v", want, d, ok)
		}
	}
	if _, ok := c.nextDelivery(r.now, true); ok {
		t.Fatal("delivered past max_ack_pending")
	}
	if i := r.info(); i.NumAckPending != 2 || i.Delivered.Consumer != 2 || i.NumPending != 1 {
		t.Fatalf("info after two deliveries: %+v", i)
	}
	if len(r.h.out) != 0 {
		t.Fatalf("the step published by itself: %v", r.h.out)
	}
}

// TestCoreAck: the ack input on three delivered messages, per ack policy:
// what stays pending, where the ack floor lands, what is due again, and
// the NAK advisory effect; nothing is published by the step itself.
func TestCoreAck(t *testing.T) {
	type ack struct {
		seq  uint64
		body string
	}
	cases := []struct {
		name    string
		policy  string
		acks    []ack
		pending []uint64
		floor   uint64
		redeliv []uint64
		naked   int
	}{
		{"explicit one", "explicit", []ack{{2, "+ACK"}}, []uint64{1, 3}, 0, nil, 0},
		{"explicit floor", "explicit", []ack{{2, "+ACK"}, {1, ""}}, []uint64{3}, 2, nil, 0},
		{"term settles", "explicit", []ack{{1, "+TERM bad"}}, []uint64{2, 3}, 1, nil, 0},
		{"all below", "all", []ack{{2, "+ACK"}}, []uint64{3}, 2, nil, 0},
		{"forged", "explicit", []ack{{9, "+ACK"}, {0, "+ACK"}}, []uint64{1, 2, 3}, 0, nil, 0},
		{"nak", "explicit", []ack{{2, "-NAK"}, {2, "-NAK"}}, []uint64{1, 2, 3}, 0, []uint64{2}, 2},
		{"nak delay", "explicit", []ack{{3, "-NAK"}, {3, "-NAK 5s"}}, []uint64{1, 2, 3}, 0, nil, 2},
		{"progress", "explicit", []ack{{1, "+WPI"}}, []uint64{1, 2, 3}, 0, nil, 0},
		{"unknown", "explicit", []ack{{1, "+WHAT"}}, []uint64{1, 2, 3}, 0, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newClockRig(t, ConsumerConfig{AckPolicy: tc.policy})
			r.publish(3)
			if got := deliveries(r.pull("in", "3")); len(got) != 3 {
				t.Fatalf("deliveries %v", got)
			}
			r.now = r.now.Add(time.Second)
			for _, a := range tc.acks {
				r.c.ack(a.seq, []byte(a.body), r.now, nil)
			}
			var pending []uint64
			for seq := range r.c.pending {
				pending = append(pending, seq)
			}
			slices.Sort(pending)
			if fmt.Sprint(pending) != fmt.Sprint(tc.pending) && !(len(pending) == 0 && len(tc.pending) == 0) {
				t.Fatalf("pending %v, want %v", pending, tc.pending)
			}
			if r.c.ackFloor.Stream != tc.floor {
				t.Fatalf("ack floor %d, want %d", r.c.ackFloor.Stream, tc.floor)
			}
			if fmt.Sprint(r.c.redeliv) != fmt.Sprint(tc.redeliv) && !(len(r.c.redeliv) == 0 && len(tc.redeliv) == 0) {
				t.Fatalf("due again %v, want %v", r.c.redeliv, tc.redeliv)
			}
			fx := r.c.ready()
			if len(fx.naked) != tc.naked || !fx.pump {
				t.Fatalf("effects %+v", fx)
			}
			if tc.name == "progress" && !r.c.pending[1].deadline.Equal(r.now.Add(r.c.cfg.AckWait)) {
				t.Fatalf("+WPI deadline %v", r.c.pending[1].deadline)
			}
			if tc.name == "nak delay" && !r.c.pending[3].deadline.Equal(r.now.Add(5*time.Second)) {
				t.Fatalf("-NAK 5s deadline %v", r.c.pending[3].deadline)
			}
			if len(r.h.out) != 0 {
				t.Fatalf("the step published by itself: %v", r.h.out)
			}
		})
	}
}

// TestClockPushFlowControl: a flow-controlled push consumer sends a flow
// control request right behind every 1024th delivery; when the host says
// the destination is full it stops (held) until resume, then goes on.
func TestClockPushFlowControl(t *testing.T) {
	r := newClockRig(t, ConsumerConfig{DeliverSubject: "push.in", FlowControl: true, Heartbeat: time.Minute, AckPolicy: "none"})
	out := r.publish(flowControlEvery + 1)
	if len(out) != flowControlEvery+2 {
		t.Fatalf("%d messages sent for %d stored", len(out), flowControlEvery+1)
	}
	fc := out[flowControlEvery]
	if fc.to != "push.in" || !strings.HasPrefix(fc.reply, "$JS.FC.S.C.") || fc.hdr != "NATS/1.0 100 FlowControl Request\r\n\r\n" {
		t.Fatalf("after delivery %d: %+v", flowControlEvery, fc)
	}
	if got := deliveries(out[flowControlEvery+1:]); len(got) != 1 {
		t.Fatalf("after the request: %v", got)
	}
	r.h.full = 2 // the second delivery from now fills the destination
	if got := deliveries(r.publish(5)); len(got) != 2 || !r.c.held {
		t.Fatalf("delivered %d while filling, held %v", len(got), r.c.held)
	}
	if out := r.at(time.Second); len(out) != 0 {
		t.Fatalf("held, yet the tick sent %v", out)
	}
	r.m.handle(&request{resume: r.c})
	if got := deliveries(r.h.take()); len(got) != 3 || r.c.held {
		t.Fatalf("after resume: %v, held %v", got, r.c.held)
	}
}

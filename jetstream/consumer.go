package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
)

// Consumer defaults, as nats-server's.
const (
	defaultAckWait       = 30 * time.Second
	defaultMaxWaiting    = 512
	defaultMaxAckPending = 1000
	defaultInactive      = 5 * time.Second // ephemeral consumers
)

// ConsumerConfig is a consumer's configuration. Durations are nanoseconds.
type ConsumerConfig struct {
	Durable           string            `json:"durable_name,omitempty"`
	Name              string            `json:"name,omitempty"`
	Description       string            `json:"description,omitempty"`
	DeliverPolicy     string            `json:"deliver_policy"`
	OptStartSeq       uint64            `json:"opt_start_seq,omitempty"`
	OptStartTime      *time.Time        `json:"opt_start_time,omitempty"`
	AckPolicy         string            `json:"ack_policy"`
	AckWait           time.Duration     `json:"ack_wait,omitempty"`
	MaxDeliver        int               `json:"max_deliver,omitempty"`
	BackOff           []time.Duration   `json:"backoff,omitempty"`
	FilterSubject     string            `json:"filter_subject,omitempty"`
	FilterSubjects    []string          `json:"filter_subjects,omitempty"`
	ReplayPolicy      string            `json:"replay_policy"`
	MaxWaiting        int               `json:"max_waiting,omitempty"`
	MaxAckPending     int               `json:"max_ack_pending,omitempty"`
	HeadersOnly       bool              `json:"headers_only,omitempty"`
	MaxRequestBatch   int               `json:"max_batch,omitempty"`
	MaxRequestExpires time.Duration     `json:"max_expires,omitempty"`
	MaxRequestBytes   int               `json:"max_bytes,omitempty"`
	InactiveThreshold time.Duration     `json:"inactive_threshold,omitempty"`
	Replicas          int               `json:"num_replicas"`
	MemoryStorage     bool              `json:"mem_storage,omitempty"`
	DeliverSubject    string            `json:"deliver_subject,omitempty"`
	DeliverGroup      string            `json:"deliver_group,omitempty"`
	FlowControl       bool              `json:"flow_control,omitempty"`
	Heartbeat         time.Duration     `json:"idle_heartbeat,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	PauseUntil        *time.Time        `json:"pause_until,omitempty"`
	PriorityGroups    []string          `json:"priority_groups,omitempty"`
	PriorityPolicy    string            `json:"priority_policy,omitempty"`
	PinnedTTL         time.Duration     `json:"priority_timeout,omitempty"`
	// Direct marks the consumer another server's stream makes on this one
	// to mirror or source it across domains (nats-server's "direct"): it
	// is served as the ephemeral push consumer it otherwise is.
	Direct bool `json:"direct,omitempty"`
}

// SequenceInfo is a consumer/stream sequence pair.
type SequenceInfo struct {
	Consumer uint64     `json:"consumer_seq"`
	Stream   uint64     `json:"stream_seq"`
	Last     *time.Time `json:"last_active,omitempty"`
}

// ConsumerInfo describes a consumer.
type ConsumerInfo struct {
	Stream         string               `json:"stream_name"`
	Name           string               `json:"name"`
	Created        time.Time            `json:"created"`
	Config         ConsumerConfig       `json:"config"`
	Delivered      SequenceInfo         `json:"delivered"`
	AckFloor       SequenceInfo         `json:"ack_floor"`
	NumAckPending  int                  `json:"num_ack_pending"`
	NumRedelivered int                  `json:"num_redelivered"`
	NumWaiting     int                  `json:"num_waiting"`
	NumPending     uint64               `json:"num_pending"`
	Paused         bool                 `json:"paused,omitempty"`
	PauseRemaining time.Duration        `json:"pause_remaining,omitempty"`
	TS             time.Time            `json:"ts"`
	PriorityGroups []PriorityGroupState `json:"priority_groups,omitempty"`
}

// consumer is one pull consumer's state machine. Owned by the Manager
// goroutine; every method runs there.
type consumer struct {
	st      *stream
	name    string
	cfg     ConsumerConfig
	created time.Time
	filters []string
	unsub   func()

	pre      []uint64 // deliver_policy last_per_subject: these first, in order
	next     uint64   // next stream sequence to consider after pre
	dseq     uint64   // last consumer (delivery) sequence
	pending  map[uint64]*pendingAck
	redeliv  []uint64 // stream sequences due again, oldest first
	redelivN int      // distinct messages redelivered
	ackFloor SequenceInfo
	waiting  []*pullRequest // for a push consumer, one endless request to its deliver subject
	active   time.Time      // last pull request or ack, for the inactive threshold
	sinceFC  int            // push with flow control: deliveries since the last request
	log      *consumerLog   // durable consumers of file streams; nil otherwise

	// For info's last_active: the last delivery, and the last ack that
	// settled a message. In memory only: zero (not shown) after a restart.
	lastDelivered, lastAcked time.Time

	// A push consumer stops delivering while its destination is over its
	// high-water mark (held) until the server calls resume, which queues
	// a request to pump it again: one per hold, never one per message.
	held   bool
	resume func() // set for push consumers; safe from any goroutine

	// pinned_client priority policy (priority.go): the pin id the pinned
	// client's pulls carry, when it was given, and when it goes unless the
	// client pulls again first. In memory only, as nats-server's.
	pin                   string
	pinGroup              string // the group the pin was given for
	pinnedTS, pinDeadline time.Time

	// pauseEnds is set while a pause_until in the future awaits the
	// advisory that says it ended (consumer_core.go: tick).
	pauseEnds bool

	ackBuf []byte        // formats deliveries' ack subjects
	peek   store.Msg     // the message nextMsg lent from the store (loadNext)
	spare  []*pendingAck // settled, for reuse (newPending)

	// fx is what the state machine's steps ask of the Manager until it
	// performs them (consumer_core.go).
	fx effects

	// Timers (timers.go): ackDue is at or before every pending ack
	// deadline (exact after a tick); stalled says the last pump could not
	// deliver for want of a subscriber or an eligible request; armed is
	// the deadline c has in the Manager's heap (zero: none); touched says
	// c is in the Manager's list to arm.
	ackDue, armed time.Time
	stalled       bool
	touched       bool
	startPump     bool // new or recovered: pumped once when armed (timers.go)
}

// push reports whether the consumer pushes to a deliver subject.
func (c *consumer) push() bool { return c.cfg.DeliverSubject != "" }

// flowControlEvery is how many deliveries a flow-controlled push consumer
// makes between flow control requests.
const flowControlEvery = 1024

// pendingAck is a delivered message awaiting its ack.
type pendingAck struct {
	dseq       uint64
	deliveries int
	deadline   time.Time
	exceeded   bool // its max-deliveries advisory went out (advisory.go)
}

// maxSpareAcks bounds the settled pendingAcks a consumer keeps for reuse.
const maxSpareAcks = 1024

// newPending returns a pendingAck for a delivery, a settled one when there
// is one: no allocation per message in steady state. settle recycles them;
// nothing keeps a pendingAck past its removal from pending.
func (c *consumer) newPending() *pendingAck {
	if n := len(c.spare); n > 0 {
		p := c.spare[n-1]
		c.spare[n-1] = nil
		c.spare = c.spare[:n-1]
		return p
	}
	return new(pendingAck)
}

// pullRequest is one waiting MSG.NEXT request.
type pullRequest struct {
	reply     string
	batch     int
	maxBytes  int
	noWait    bool
	expires   time.Time // zero: none
	heartbeat time.Duration
	lastSent  time.Time
	delivered int

	// Priority groups (priority.go); zero for a pull without a JSON body.
	group         string
	minPending    int64
	minAckPending int64
	pinID         string
	priority      int
}

// errDirectDurable is nats-server's refusal of a durable "direct"
// consumer: only a server's own (ephemeral) mirror or source consumer is.
var errDirectDurable = errDef{400, 10091, "consumer direct requires an ephemeral consumer"}

type nextRequest struct {
	Expires   time.Duration `json:"expires,omitempty"`
	Batch     int           `json:"batch,omitempty"`
	MaxBytes  int           `json:"max_bytes,omitempty"`
	NoWait    bool          `json:"no_wait,omitempty"`
	Heartbeat time.Duration `json:"idle_heartbeat,omitempty"`
	pullPriority
}

// normalizeConsumer fills defaults and validates a pull consumer config.
func normalizeConsumer(cfg *ConsumerConfig) *APIError {
	bad := func(msg string) *APIError { return newErr(errConsumerPolicy, "err", msg) }
	if cfg.Direct && cfg.Durable != "" {
		return newErr(errDirectDurable)
	}
	if cfg.DeliverSubject != "" && !router.ValidLiteralSubject(cfg.DeliverSubject) {
		return newErr(errDeliverSubject)
	}
	if cfg.DeliverPolicy == "" {
		cfg.DeliverPolicy = "all"
	}
	switch cfg.DeliverPolicy {
	case "all", "last", "new", "last_per_subject":
	case "by_start_sequence":
		if cfg.OptStartSeq == 0 {
			return bad("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
		}
	case "by_start_time":
		if cfg.OptStartTime == nil {
			return bad("consumer delivery policy is deliver by start time, but optional start time is not set")
		}
	default:
		return bad("invalid deliver policy " + strconv.Quote(cfg.DeliverPolicy))
	}
	if cfg.AckPolicy == "" {
		cfg.AckPolicy = "explicit"
	}
	if cfg.AckPolicy != "none" && cfg.AckPolicy != "all" && cfg.AckPolicy != "explicit" {
		return bad("invalid ack policy " + strconv.Quote(cfg.AckPolicy))
	}
	if cfg.ReplayPolicy == "" {
		cfg.ReplayPolicy = "instant"
	}
	switch cfg.ReplayPolicy {
	case "instant":
	case "original": // pacing by the stored gaps is not implemented
		return bad("replay policy \"original\" is not supported by this server")
	default:
		return bad("invalid replay policy " + strconv.Quote(cfg.ReplayPolicy))
	}
	if cfg.Replicas > 1 { // every stream here has one replica
		return newErr(errConsumerReplicas)
	}
	if cfg.DeliverSubject == "" && cfg.Heartbeat > 0 {
		return newErr(errHBRequiresPush)
	}
	if cfg.DeliverSubject == "" && cfg.FlowControl {
		return newErr(errFCRequiresPush)
	}
	if cfg.FlowControl && cfg.Heartbeat <= 0 {
		return newErr(errFCNeedsHeartbeat)
	}
	if cfg.DeliverSubject != "" && cfg.MaxWaiting != 0 {
		return newErr(errPushMaxWaiting)
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = defaultAckWait
	}
	if len(cfg.BackOff) > 0 {
		cfg.AckWait = cfg.BackOff[0]
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = -1
	}
	if cfg.MaxWaiting == 0 && cfg.DeliverSubject == "" {
		cfg.MaxWaiting = defaultMaxWaiting
	}
	if cfg.MaxAckPending == 0 && cfg.AckPolicy != "none" {
		cfg.MaxAckPending = defaultMaxAckPending
	}
	if cfg.Durable == "" && cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = defaultInactive
	}
	for _, f := range append([]string{cfg.FilterSubject}, cfg.FilterSubjects...) {
		if f != "" && !router.ValidSubject(f) {
			return bad("invalid filter subject " + strconv.Quote(f))
		}
	}
	return normalizePriority(cfg)
}

func (c *consumer) matches(subject string) bool {
	if len(c.filters) == 0 {
		return true
	}
	for _, f := range c.filters {
		if router.SubjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// start positions the consumer by its deliver policy.
func (c *consumer) start() {
	state := c.st.store.State()
	c.next = state.FirstSeq
	switch c.cfg.DeliverPolicy {
	case "new":
		c.next = state.LastSeq + 1
	case "last_per_subject":
		for subj := range c.st.perSubj {
			if !c.matches(subj) {
				continue
			}
			if m, err := c.st.store.LoadLast(subj); err == nil {
				c.pre = append(c.pre, m.Seq)
			}
		}
		sort.Slice(c.pre, func(i, j int) bool { return c.pre[i] < c.pre[j] })
		c.next = state.LastSeq + 1
	case "last":
		c.next = state.LastSeq
		for q := state.LastSeq; q >= state.FirstSeq && q > 0; q-- {
			if m, err := c.st.store.Load(q); err == nil && c.matches(m.Subject) {
				c.next = q
				break
			}
		}
	case "by_start_sequence":
		c.next = max(c.cfg.OptStartSeq, state.FirstSeq)
	case "by_start_time":
		c.next = state.LastSeq + 1
		for q := state.FirstSeq; ; { // over stored messages, not over the sequences
			m, err := c.st.store.LoadNext("", q)
			if err != nil {
				break
			}
			if !time.Unix(0, m.Time).Before(*c.cfg.OptStartTime) {
				c.next = m.Seq
				break
			}
			q = m.Seq + 1
		}
	}
	c.next = max(c.next, 1) // "last" on an empty stream: LastSeq is 0
	c.ackFloor = SequenceInfo{Stream: c.next - 1}
	if len(c.pre) > 0 {
		c.ackFloor.Stream = c.pre[0] - 1
	}
}

// nextMsg returns the next message to deliver: due redeliveries first, then
// new messages matching the filters. ok is false when there is none.
func (c *consumer) nextMsg() (m *store.Msg, redelivery bool, ok bool) {
	for len(c.redeliv) > 0 {
		seq := c.redeliv[0]
		c.redeliv = c.redeliv[1:]
		p, still := c.pending[seq]
		if !still {
			continue
		}
		if c.exhausted(p) { // NAKed after its last delivery: dropped now, as nats-server
			c.exceed(seq, p)
			continue
		}
		if msg, err := c.st.store.Load(seq); err == nil {
			return msg, true, true
		}
		delete(c.pending, seq) // removed from the stream meanwhile
	}
	for len(c.pre) > 0 {
		seq := c.pre[0]
		c.pre = c.pre[1:]
		if msg, err := c.st.store.Load(seq); err == nil {
			return msg, false, true
		}
	}
	msg, err := c.loadNext(c.next)
	for err == nil && !c.matches(msg.Subject) {
		msg, err = c.loadNext(msg.Seq + 1)
	}
	if err != nil {
		c.next = max(c.next, c.st.store.State().LastSeq+1)
		return nil, false, false
	}
	c.next = msg.Seq + 1
	return msg, false, true
}

// loadNext is the store's next message at or after seq through the
// consumer's single filter, lent (c.peek, no copy) when the store can:
// the delivery made of it is handed to Host.Deliver, which copies it,
// before the store is read again.
func (c *consumer) loadNext(seq uint64) (*store.Msg, error) {
	if p, ok := c.st.store.(store.Peeker); ok {
		if err := p.PeekNext(c.singleFilter(), seq, &c.peek); err != nil {
			return nil, err
		}
		return &c.peek, nil
	}
	return c.st.store.LoadNext(c.singleFilter(), seq)
}

// singleFilter is the store-side filter when there is exactly one.
func (c *consumer) singleFilter() string {
	if len(c.filters) == 1 {
		return c.filters[0]
	}
	return ""
}

// numPending counts stream messages not yet delivered that match.
func (c *consumer) numPending() uint64 {
	pre := uint64(len(c.pre))
	if len(c.filters) == 0 {
		return pre + c.st.store.NumPending(c.next, nil)
	}
	return pre + c.st.store.NumPending(c.next, c.matches)
}

// pump delivers to waiting requests while there are messages and room, and
// the destination takes more (a held push consumer waits for resume): the
// consumer picks each delivery (nextDelivery), the Manager hands it to the
// host and feeds back whether the destination is full (delivered).
func (m *Manager) pump(c *consumer, now time.Time) {
	c.stalled = false
	for {
		interest := true
		if c.push() && len(c.waiting) > 0 {
			interest = m.host.Interest(c.waiting[0].reply) // nobody subscribes yet: polled (timers.go)
		}
		d, ok := c.nextDelivery(now, interest)
		if !ok {
			break
		}
		c.delivered(d, m.host.Deliver(d.to, d.subject, d.reply, d.hdr, d.data, c.resume))
		if d.flow {
			m.emit(c, now) // the flow control request right behind its message
		}
	}
	c.endNoWait()
	c.fx.pump = false // done now
	m.emit(c, now)    // the ended requests' statuses, what nextMsg dropped, pins
}

// delivery is one stream message for the Manager to hand to Host.Deliver:
// to the request's inbox, shown under the stream subject with the ack
// subject as reply.
type delivery struct {
	// reply aliases the consumer's ackBuf: valid until its next delivery.
	to, subject, reply string
	hdr, data          []byte
	seq                uint64
	ackNone            bool // settled on delivery: the stream may drop it after
	flow               bool // a flow control request goes out after it
}

// nextDelivery is the delivery input of the state machine: the next
// message for a waiting request, with the consumer's state moved past it
// (pending, sequences, the request's budget). ok is false when nothing
// may be delivered now: no request, no message, no room under
// max_ack_pending, paused, held, or (interest false) nobody subscribes to
// a push consumer's deliver subject.
func (c *consumer) nextDelivery(now time.Time, interest bool) (d delivery, ok bool) {
	if len(c.waiting) == 0 || c.held || c.paused(now) {
		return d, false
	}
	if !interest {
		c.stalled = true // nobody subscribes yet: polled (timers.go)
		return d, false
	}
	if c.cfg.AckPolicy != "none" && c.cfg.MaxAckPending > 0 && len(c.pending) >= c.cfg.MaxAckPending && len(c.redeliv) == 0 {
		return d, false // max ack pending: wait for acks
	}
	msg, redelivery, ok := c.nextMsg()
	if !ok {
		return d, false
	}
	size := len(msg.Subject) + len(msg.Hdr) + len(msg.Data)
	i := c.pickRequest(size, now)
	if i < 0 {
		c.requeue(msg, redelivery)
		c.stalled = true
		return d, false // no request may take it now: a later pull, ack or poll retries
	}
	req := c.waiting[i]
	d = c.deliver(req, msg, redelivery, now)
	req.batch--
	if req.maxBytes > 0 {
		if req.maxBytes -= size; req.maxBytes == 0 {
			req.batch = 0 // its byte budget is spent
		}
	}
	c.served(i)
	return d, true
}

// endNoWait ends the no_wait requests once nothing is left to deliver now.
func (c *consumer) endNoWait() {
	keep := c.waiting[:0]
	for _, r := range c.waiting {
		if r.noWait {
			c.endRequest(r, r.delivered == 0)
			continue
		}
		keep = append(keep, r)
	}
	clear(c.waiting[len(keep):])
	c.waiting = keep
}

// requeue puts back a message that could not be delivered, where nextMsg
// took it from: the redeliveries, the stream (next had moved just past
// it), or the last_per_subject list.
func (c *consumer) requeue(msg *store.Msg, redelivery bool) {
	switch {
	case redelivery:
		c.redeliv = append([]uint64{msg.Seq}, c.redeliv...)
	case c.next == msg.Seq+1:
		c.next = msg.Seq
	default:
		c.pre = append([]uint64{msg.Seq}, c.pre...)
	}
}

// deliver moves c's state past delivering msg to req and returns the
// delivery.
func (c *consumer) deliver(req *pullRequest, msg *store.Msg, redelivery bool, now time.Time) delivery {
	c.dseq++
	c.lastDelivered = now
	deliveries := 1
	if p := c.pending[msg.Seq]; p != nil {
		p.deliveries++
		deliveries = p.deliveries
		p.dseq = c.dseq
		p.deadline = now.Add(c.ackWait(p.deliveries))
		c.noteDue(p.deadline)
	} else if c.cfg.AckPolicy != "none" {
		p := c.newPending()
		*p = pendingAck{dseq: c.dseq, deliveries: 1, deadline: now.Add(c.ackWait(1))}
		c.pending[msg.Seq] = p
		c.noteDue(p.deadline)
	}
	if c.cfg.AckPolicy == "none" {
		c.ackFloor = SequenceInfo{Consumer: c.dseq, Stream: msg.Seq}
		c.lastAcked = now
	}
	if redelivery && deliveries == 2 {
		c.redelivN++
	}
	c.logDelivered(msg.Seq, c.dseq, deliveries)
	pending := c.numPendingFast(msg.Seq)
	b := append(c.ackBuf[:0], "$JS.ACK."...)
	b = append(append(append(b, c.st.cfg.Name...), '.'), c.name...)
	for _, n := range [...]uint64{uint64(deliveries), msg.Seq, c.dseq, uint64(msg.Time), pending} {
		b = strconv.AppendUint(append(b, '.'), n, 10)
	}
	c.ackBuf = b
	// The reply aliases ackBuf (no string per delivery): pump hands d to
	// Host.Deliver, which copies it, before the next delivery reuses it.
	d := delivery{to: req.reply, subject: msg.Subject, reply: unsafe.String(unsafe.SliceData(b), len(b)), seq: msg.Seq, ackNone: c.cfg.AckPolicy == "none"}
	d.hdr, d.data = c.pinHeader(msg.Hdr), msg.Data
	if c.cfg.HeadersOnly {
		d.hdr = appendHeader(d.hdr, "Nats-Msg-Size", strconv.Itoa(len(d.data)))
		d.data = nil
	}
	req.delivered++
	req.lastSent = now
	if c.push() && c.cfg.FlowControl {
		if c.sinceFC++; c.sinceFC >= flowControlEvery {
			c.sinceFC = 0
			d.flow = true
		}
	}
	return d
}

// delivered is the host's answer to a delivery: taken is false when the
// destination is over its high-water mark (the message went; deliver no
// more until resume).
func (c *consumer) delivered(d delivery, taken bool) {
	if !taken {
		c.held = true
	}
	if d.flow {
		c.fx.statuses = append(c.fx.statuses, statusMsg{to: d.to, hdr: []byte("NATS/1.0 100 FlowControl Request\r\n\r\n"),
			reply: fmt.Sprintf("$JS.FC.%s.%s.%s", c.st.cfg.Name, c.name, randomName())})
	}
	if d.ackNone {
		c.st.dropIfUninterested(d.seq) // after the delivery has used the message
	}
}

// numPendingFast is the pending count after seq, for the ack subject: exact
// and O(1) for an unfiltered stream without gaps, else counted from the index.
func (c *consumer) numPendingFast(seq uint64) uint64 {
	st := c.st.store.State()
	if len(c.pre) == 0 && len(c.filters) == 0 && st.Deleted == 0 && st.LastSeq >= seq {
		return st.LastSeq - seq
	}
	return c.numPending()
}

func (c *consumer) ackWait(deliveries int) time.Duration {
	if n := len(c.cfg.BackOff); n > 0 {
		return c.cfg.BackOff[min(max(deliveries-1, 0), n-1)] // a replayed log may say 0
	}
	return c.cfg.AckWait
}

// endRequest finishes a pull request with a status: 404 when nothing was
// delivered to a no_wait request, 408 otherwise.
func (c *consumer) endRequest(r *pullRequest, nothing bool) {
	if nothing && r.noWait {
		c.status(r.reply, []byte("NATS/1.0 404 No Messages\r\n\r\n"))
		return
	}
	c.status(r.reply, timeoutStatus(r))
}

// tickConsumer feeds the time to c's state machine (consumer_core.go)
// and performs what it asks.
func (m *Manager) tickConsumer(c *consumer, now time.Time) {
	c.tick(now)
	m.perform(c, now)
}

func (c *consumer) isQueued(seq uint64) bool {
	for _, s := range c.redeliv {
		if s == seq {
			return true
		}
	}
	return false
}

// ackTokens are the numbers of an ack subject: how many times the message
// was delivered, its stream and consumer sequences.
type ackTokens struct {
	delivered, sseq, dseq uint64
}

// parseAckSubject reads an ack subject
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, the
// only form c hands out; ok is false for anything else (a forged or mangled
// subject). It does not allocate.
func parseAckSubject(subject string, c *consumer) (t ackTokens, ok bool) {
	rest, found := strings.CutPrefix(subject, "$JS.ACK.")
	if !found {
		return t, false
	}
	for _, want := range [2]string{c.st.cfg.Name, c.name} {
		tok, tail, more := strings.Cut(rest, ".")
		if !more || tok != want {
			return t, false
		}
		rest = tail
	}
	for i := 0; i < 5; i++ {
		tok, tail, more := strings.Cut(rest, ".")
		if more == (i == 4) {
			return t, false // not exactly five numeric tokens
		}
		n, err := strconv.ParseUint(tok, 10, 64)
		if err != nil {
			return t, false
		}
		switch i {
		case 0:
			t.delivered = n
		case 1:
			t.sseq = n
		case 2:
			t.dseq = n
		}
		rest = tail
	}
	return t, t.sseq != 0
}

// ack applies one ack body for the message with stream sequence sseq and
// performs what it asks; confirmed (may be nil) runs once the ack is
// durable, for double acks.
func (m *Manager) ack(c *consumer, sseq uint64, body []byte, now time.Time, confirmed func()) {
	if !c.ack(sseq, body, now, confirmed) && confirmed != nil {
		confirmed() // nothing to make durable
	}
	m.perform(c, now)
}

// ack is the ack input of the state machine (consumer_core.go): +ACK,
// +TERM, +NXT (its pull is c.request's), -NAK, +WPI for stream sequence
// sseq. It reports whether confirmed went with a log record, to run once
// that is durable; otherwise the caller confirms.
func (c *consumer) ack(sseq uint64, body []byte, now time.Time, confirmed func()) (logged bool) {
	c.active = now
	kind, arg, _ := bytes.Cut(bytes.TrimSpace(body), []byte(" ")) // no copy of the body per ack
	p := c.pending[sseq]
	switch string(kind) {
	case "", "+ACK", "+NXT", "+TERM":
		// ack-all: only what moves the floor, so a replayed or forged ack
		// below it costs neither a scan of pending nor a log record
		if p != nil || (c.cfg.AckPolicy == "all" && sseq > c.ackFloor.Stream && sseq < c.next) {
			c.applyAck(sseq)
			c.lastAcked = now
			c.logAck(sseq, confirmed)
			logged = true
		}
	case "-NAK":
		delay := time.Duration(0)
		if len(arg) > 0 {
			var d struct {
				Delay time.Duration `json:"delay"`
			}
			if arg[0] == '{' {
				if json.Unmarshal(arg, &d) == nil {
					delay = d.Delay
				}
			} else if v, err := time.ParseDuration(string(arg)); err == nil { // "-NAK 5s", as nats-server
				delay = v
			}
		}
		c.nak(sseq, delay, now)
	case "+WPI":
		c.progress(sseq, now)
	}
	c.fx.pump = true
	return logged
}

// applyAck settles sseq (and, with ack policy all, everything below it).
func (c *consumer) applyAck(sseq uint64) {
	if c.cfg.AckPolicy == "all" {
		for seq := range c.pending {
			if seq < sseq {
				c.settle(seq)
			}
		}
	}
	c.settle(sseq)
	c.advanceAckFloor()
}

// settle forgets an acknowledged (or terminated) delivery. On a work-queue
// stream the message is done with; on an interest stream it is once every
// interested consumer has settled it. A sequence that is not pending (never
// delivered to this consumer, or settled already) changes nothing: acks are
// plain subjects any client can publish to.
func (c *consumer) settle(sseq uint64) {
	p, ok := c.pending[sseq]
	if !ok {
		return
	}
	delete(c.pending, sseq)
	if len(c.spare) < maxSpareAcks { // reused by the next delivery (newPending)
		*p = pendingAck{}
		c.spare = append(c.spare, p)
	}
	if c.st.recovering {
		return // replaying a log: the stream already reflects these acks
	}
	switch c.st.cfg.Retention {
	case "workqueue":
		if m, err := c.st.store.Load(sseq); err == nil {
			c.st.remove(sseq, m.Subject)
		}
	case "interest":
		c.st.dropIfUninterested(sseq)
	}
}

// done reports whether this consumer no longer needs stream message seq:
// it has gone past it and holds no unacknowledged delivery of it.
func (c *consumer) done(seq uint64) bool {
	if _, pending := c.pending[seq]; pending {
		return false
	}
	for _, p := range c.pre {
		if p == seq {
			return false
		}
	}
	return seq < c.next
}

// floorWalk bounds advanceAckFloor's step-by-step walk.
const floorWalk = 1024

// advanceAckFloor moves the floor up to just below the oldest pending.
func (c *consumer) advanceAckFloor() {
	if c.cfg.AckPolicy == "none" {
		return
	}
	if len(c.pending) == 0 {
		c.ackFloor = SequenceInfo{Consumer: c.dseq, Stream: c.next - 1}
		return
	}
	if len(c.pre) == 0 {
		// The floor sits below every pending sequence, so the oldest is the
		// first pending one above it: usually the next sequence, and the
		// floor only moves up, so this costs O(1) amortized per ack where
		// the scan below costs O(pending). The walk is capped: across a far
		// purge the gap may span most of the sequence space.
		limit := c.next
		if room := c.next - c.ackFloor.Stream; room > floorWalk {
			limit = c.ackFloor.Stream + floorWalk
		}
		for seq := c.ackFloor.Stream + 1; seq < limit; seq++ {
			if p, ok := c.pending[seq]; ok {
				c.ackFloor = SequenceInfo{Consumer: p.dseq - 1, Stream: seq - 1}
				return
			}
		}
	}
	oldest := uint64(0)
	var od uint64
	for seq, p := range c.pending {
		if oldest == 0 || seq < oldest {
			oldest, od = seq, p.dseq
		}
	}
	c.ackFloor = SequenceInfo{Consumer: od - 1, Stream: oldest - 1}
}

func (c *consumer) info(now time.Time) *ConsumerInfo {
	waiting := len(c.waiting)
	if c.push() {
		waiting = 0 // the endless request to the deliver subject is no client's pull
	}
	ackFloor := c.ackFloor
	ackFloor.Last = lastActive(c.lastAcked)
	info := &ConsumerInfo{
		Stream: c.st.cfg.Name, Name: c.name, Created: c.created, Config: c.cfg, TS: now,
		Delivered:      SequenceInfo{Consumer: c.dseq, Stream: c.next - 1, Last: lastActive(c.lastDelivered)},
		AckFloor:       ackFloor,
		NumAckPending:  len(c.pending),
		NumRedelivered: c.redelivN,
		NumWaiting:     waiting,
		NumPending:     c.numPending(),
		PriorityGroups: c.priorityState(),
	}
	if info.Paused = c.paused(now); info.Paused {
		info.PauseRemaining = c.cfg.PauseUntil.Sub(now)
	}
	return info
}

// paused reports whether c is paused at now: it delivers nothing until its
// pause_until passes, when the next tick resumes it. Requests still queue,
// expire and get heartbeats.
func (c *consumer) paused(now time.Time) bool {
	return c.cfg.PauseUntil != nil && now.Before(*c.cfg.PauseUntil)
}

// inactive reports whether c has been idle past its inactive threshold
// (consumer_core.go: idle), asking the host about a push consumer's
// subscribers only when that matters.
func (m *Manager) inactive(c *consumer, now time.Time) bool {
	interest := c.push() && c.cfg.InactiveThreshold > 0 && m.host.Interest(c.cfg.DeliverSubject)
	return c.idle(now, interest)
}

// lastActive is a last_active value: absent until something happened.
func lastActive(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// appendHeader adds one header to a NATS/1.0 header block.
func appendHeader(hdr []byte, key, value string) []byte {
	if len(hdr) < 4 {
		hdr = []byte("NATS/1.0\r\n\r\n")
	}
	out := append([]byte(nil), hdr[:len(hdr)-2]...)
	return append(out, key+": "+value+"\r\n\r\n"...)
}

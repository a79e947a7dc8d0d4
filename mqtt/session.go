package mqtt

// Concurrency: a Session is touched by the reading goroutine of the
// connection that holds it, by publishers delivering to it (under a
// connection's outLock, or offline handlers on any goroutine) and by the
// Persister (housekeeping, Shutdown). mu guards all its state. Under mu,
// journal and forget take Persister.mu; mu is taken under bridge.mu and
// outLock, and never takes either.

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"sync"
)

// DefaultMaxInflight bounds the QoS 1/2 messages sent to a client and not
// yet acknowledged, like nats-server's mqtt max_ack_pending; more wait in
// the session's queue.
const DefaultMaxInflight = 1024

// DefaultMaxQueueMsgs and DefaultMaxQueueBytes bound what a session holds
// for its client (inflight and queued, offline or behind a full window);
// past either, new messages are discarded.
const (
	DefaultMaxQueueMsgs  = 100_000
	DefaultMaxQueueBytes = 64 << 20
)

// Msg is one QoS 1/2 message on its way to a client: sent and unacknowledged
// (ID set) or queued (ID 0).
type Msg struct {
	ID      uint16 `json:"id,omitempty"`
	Topic   string `json:"topic"`
	QoS     byte   `json:"qos"`
	Payload []byte `json:"payload,omitempty"`
	// Released is set once the client sent PUBREC for a QoS 2 message: from
	// then on the server resends PUBREL, not the message.
	Released bool `json:"released,omitempty"`
	// Seq is the message's journal record (0: not journaled, sent at once to
	// a connected client and kept, payload and all, in the snapshot).
	Seq uint64 `json:"seq,omitempty"`
	// Hdr is the NATS header block the message was routed with, kept for
	// MQTT 5 sessions only: it carries the message's MQTT 5 properties.
	Hdr []byte `json:"hdr,omitempty"`
	// Expires is when an MQTT 5 message expiry interval runs out (unix
	// seconds; 0: never). A queued message past it is dropped unsent.
	Expires int64 `json:"exp,omitempty"`
	// Group is the shared subscription group the message came through
	// ("" for none): if the client leaves for good with it unacknowledged,
	// another member of the group gets it.
	Group string `json:"group,omitempty"`

	// resent marks an inflight message held back on Resume (the window
	// was full) and sent later: it goes with DUP. Written under
	// Session.mu, read by the connection after Acked returns it.
	resent bool
}

// size is what a message counts against the byte limit.
func (m *Msg) size() int { return len(m.Topic) + len(m.Payload) + len(m.Hdr) }

// expired reports whether m's expiry interval has run out at now (unix
// seconds).
func (m *Msg) expired(now int64) bool { return m.Expires != 0 && now >= m.Expires }

// ExpiryNever is the MQTT 5 session expiry interval of a session that
// never expires (and of an MQTT 3.1.1 persistent session).
const ExpiryNever = ^uint32(0)

// Session is the server side of one MQTT client id: its subscriptions and
// its QoS 1/2 delivery state. A session outlives its connections unless it
// is clean.
//
// Locking rule: mu guards every field below it. The session is touched by
// the loop of the connection that holds it, by any publisher's goroutine
// while it is offline (its messages are queued here), and by the persister
// that snapshots it; none of them holds mu across I/O. A session's mu comes
// before the Persister's when both are held (journaling, snapshots).
type Session struct {
	ID    string
	Clean bool

	mu sync.Mutex
	// owner is the user that created the session ("" with authentication
	// off, and in snapshots older than owners): only that user may resume it.
	owner       string
	subs        map[string]byte // filter -> granted QoS
	inflight    []*Msg          // sent, in send order
	queue       []*Msg          // waiting for a free packet id
	nextID      uint16
	qos2In      map[uint16]struct{} // incoming QoS 2 ids delivered, awaiting PUBREL; nil until the first
	maxInflight int
	// held and heldBytes count the messages inflight and queued; past
	// maxMsgs or maxBytes new ones are discarded.
	held, heldBytes   int
	maxMsgs, maxBytes int
	dirty             bool // the snapshot changed (the queue is not in it)
	// onDirty, set for a persistent session (bridge.journal), lists it
	// for the next housekeeping save when it becomes dirty; listed says
	// it is on that list. DeleteSession clears onDirty: a session no
	// longer held is never saved again.
	onDirty func(*Session)
	listed  bool
	// unsent is how many inflight messages, the last ones, Resume held
	// back because the client's window (its receive maximum) is smaller
	// than what was inflight: acks send them before any queued one.
	unsent int
	// journal, set for persistent sessions, records each queued message as
	// it arrives and returns its record's sequence; forget removes a record
	// once its message is acknowledged or dropped. Both run under mu (see
	// Persister.SaveSession for the lock order).
	journal func(*Msg) uint64
	forget  func(seq uint64)

	// v5 is set for a session last held by an MQTT 5 client: its queued
	// messages keep their headers (properties). expiry is its session
	// expiry interval in seconds (ExpiryNever for 3.1.1 persistent
	// sessions), offlineSince when its client left (unix seconds; 0 while
	// held). subIDs are the MQTT 5 subscription identifiers by filter.
	v5           bool
	expiry       uint32
	offlineSince int64
	subIDs       map[string]uint32

	// will is the MQTT 5 will waiting out its will delay while the client
	// is away (a copy of the bridge's), or armed (due 0) while a client
	// with a will is connected; nil otherwise. It is in the snapshot so
	// that a restart, or a kill, does not lose it.
	will *delayedWill
}

// SetWill records the will (nil: none) waiting for the client's return.
func (s *Session) SetWill(w *delayedWill) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w == nil && s.will == nil {
		return
	}
	s.will = nil
	if w != nil {
		c := *w
		s.will = &c
	}
	s.markDirty()
}

// pendingWill returns a copy of the will recorded by SetWill, or nil.
func (s *Session) pendingWill() *delayedWill {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.will == nil {
		return nil
	}
	c := *s.will
	return &c
}

// SetV5 records the protocol and session expiry interval of the client now
// holding the session, and the most QoS 1/2 messages it may have inflight
// (its receive maximum; 0: the default).
func (s *Session) SetV5(v5 bool, expiry uint32, receiveMax int) {
	s.mu.Lock()
	if s.v5 != v5 || s.expiry != expiry {
		s.markDirty()
	}
	s.v5, s.expiry = v5, expiry
	s.maxInflight = min(cmp.Or(receiveMax, DefaultMaxInflight), DefaultMaxInflight)
	s.offlineSince = 0
	s.mu.Unlock()
}

// V5 reports whether an MQTT 5 client held the session last.
func (s *Session) V5() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.v5
}

// Expiry returns the session expiry interval in seconds.
func (s *Session) Expiry() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry
}

// SetExpiry changes the session expiry interval (an MQTT 5 DISCONNECT may).
func (s *Session) SetExpiry(expiry uint32) {
	s.mu.Lock()
	if s.expiry != expiry {
		s.expiry = expiry
		s.markDirty()
	}
	s.mu.Unlock()
}

// SetOffline records when the client left (unix seconds).
func (s *Session) SetOffline(now int64) {
	s.mu.Lock()
	s.offlineSince = now
	s.markDirty()
	s.mu.Unlock()
}

// offlineKnown reports whether the session records when its client left.
func (s *Session) offlineKnown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offlineSince != 0
}

// Expired reports whether the session, offline, has outlived its expiry
// interval at now (unix seconds).
func (s *Session) Expired(now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry != ExpiryNever && s.offlineSince != 0 && now-s.offlineSince >= int64(s.expiry)
}

// SubID returns the MQTT 5 subscription identifier of filter (0: none).
func (s *Session) SubID(filter string) uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subIDs[filter]
}

// SetSubID records filter's subscription identifier (0 removes it).
func (s *Session) SetSubID(filter string, id uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 {
		if _, ok := s.subIDs[filter]; ok {
			delete(s.subIDs, filter)
			s.markDirty()
		}
		return
	}
	if s.subIDs == nil {
		s.subIDs = make(map[string]uint32)
	}
	s.subIDs[filter] = id
	s.markDirty()
}

// NewSession returns an empty session.
func NewSession(id string, clean bool) *Session {
	return &Session{ID: id, Clean: clean, subs: make(map[string]byte),
		maxInflight: DefaultMaxInflight, maxMsgs: DefaultMaxQueueMsgs, maxBytes: DefaultMaxQueueBytes,
		expiry: ExpiryNever}
}

// SetLimits sets the most messages and bytes the session holds (0: the
// default). A session restored above them keeps what it has; only new
// messages are refused until it drains below.
func (s *Session) SetLimits(msgs, bytes int) {
	s.mu.Lock()
	s.maxMsgs, s.maxBytes = cmp.Or(msgs, DefaultMaxQueueMsgs), cmp.Or(bytes, DefaultMaxQueueBytes)
	s.mu.Unlock()
}

// Held returns the number of messages the session holds and their bytes.
func (s *Session) Held() (msgs, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.heldBytes
}

// Discards reports whether the session is too full for any message with a
// payload of n bytes, whatever its topic: a publisher checks it before
// mapping the topic (which allocates) for a message it may have to drop.
func (s *Session) Discards(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held+1 > s.maxMsgs || s.heldBytes+n > s.maxBytes
}

// fullFor reports whether a message on topic with payload must be
// discarded. Caller holds mu.
func (s *Session) fullFor(topic string, payload []byte) bool {
	return s.held+1 > s.maxMsgs || s.heldBytes+len(topic)+len(payload) > s.maxBytes
}

// hold counts m in, or release out, of what the session holds. Caller
// holds mu.
func (s *Session) hold(m *Msg) { s.held, s.heldBytes = s.held+1, s.heldBytes+m.size() }
func (s *Session) release(m *Msg) {
	s.held, s.heldBytes = s.held-1, s.heldBytes-m.size()
	if m.Seq != 0 && s.forget != nil {
		s.forget(m.Seq)
	}
}

// Owner returns the user the session belongs to.
func (s *Session) Owner() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owner
}

// SetOwner records the user the session belongs to.
func (s *Session) SetOwner(user string) {
	s.mu.Lock()
	if s.owner != user {
		s.owner = user
		s.markDirty()
	}
	s.mu.Unlock()
}

// Prune drops the filters keepFilter refuses and the messages (queued or
// inflight) whose topic keepTopic refuses: what the owner's permissions no
// longer allow. It returns the filters dropped and the number of messages.
func (s *Session) Prune(keepFilter, keepTopic func(string) bool) (filters []string, msgs int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for f := range s.subs {
		if !keepFilter(f) {
			delete(s.subs, f)
			filters = append(filters, f)
		}
	}
	keep := func(list []*Msg) []*Msg {
		out := list[:0]
		for _, m := range list {
			if keepTopic(m.Topic) {
				out = append(out, m)
			} else {
				s.release(m)
				msgs++
			}
		}
		clear(list[len(out):])
		return out
	}
	s.inflight = keep(s.inflight)
	s.queue = keep(s.queue)
	if len(filters) > 0 || msgs > 0 {
		s.markDirty()
	}
	return filters, msgs
}

// SortedFilters returns the session's filters in sorted order.
func (s *Session) SortedFilters() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.subs))
}

// Subscribe records a filter with its granted QoS.
func (s *Session) Subscribe(filter string, qos byte) {
	s.mu.Lock()
	s.subs[filter] = qos
	s.markDirty()
	s.mu.Unlock()
}

// Unsubscribe forgets a filter.
func (s *Session) Unsubscribe(filter string) {
	s.mu.Lock()
	delete(s.subs, filter)
	delete(s.subIDs, filter)
	s.markDirty()
	s.mu.Unlock()
}

// Subs returns a copy of the subscriptions.
func (s *Session) Subs() map[string]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]byte, len(s.subs))
	for f, q := range s.subs {
		out[f] = q
	}
	return out
}

// Send assigns a packet id to a QoS 1/2 message when the inflight window has
// room and returns it to be written now; otherwise the message waits in the
// queue (journaled) and Send returns nil, as it does when the session is
// full and the message is discarded (dropped reports that). The session
// keeps payload, which must be a copy.
func (s *Session) Send(topic string, payload []byte, qos byte) (m *Msg, dropped bool) {
	return s.send(topic, "", nil, payload, qos, false)
}

// Send5 is Send for a message with its header block (MQTT 5 properties),
// which the session keeps (hdr must be a copy, or nil). expires, when not
// 0, is when the message's expiry interval ends (a retained message keeps
// the end it was stored with); 0 counts the header's interval from now.
func (s *Session) Send5(topic string, hdr, payload []byte, qos byte, expires int64) (m *Msg, dropped bool) {
	return s.sendExpiring(topic, "", hdr, payload, qos, false, expires)
}

// SendCopy is Send for a payload the caller does not own (a routed
// message): it is copied only once the session has room for it, so a full
// session costs a discarded message no allocation.
func (s *Session) SendCopy(topic string, payload []byte, qos byte) (m *Msg, dropped bool) {
	return s.send(topic, "", nil, payload, qos, true)
}

// SendCopy5 is SendCopy for a message whose header block (MQTT 5
// properties) the session keeps, copied with the payload.
func (s *Session) SendCopy5(topic string, hdr, payload []byte, qos byte) (m *Msg, dropped bool) {
	return s.send(topic, "", hdr, payload, qos, true)
}

// SendShared is SendCopy5 for a message that came through shared
// subscription group group.
func (s *Session) SendShared(topic, group string, hdr, payload []byte, qos byte) (m *Msg, dropped bool) {
	return s.send(topic, group, hdr, payload, qos, true)
}

// Unacked removes and returns the messages that came through shared
// subscriptions and were not acknowledged (nor, at QoS 2, received), for
// the group's other members: the session's client has left for good.
func (s *Session) Unacked() []*Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Msg
	take := func(list []*Msg) []*Msg {
		keep := list[:0]
		for _, m := range list {
			if m.Group != "" && !m.Released {
				s.release(m)
				out = append(out, m)
			} else {
				keep = append(keep, m)
			}
		}
		clear(list[len(keep):])
		return keep
	}
	s.inflight = take(s.inflight)
	s.queue = take(s.queue)
	return out
}

func (s *Session) send(topic, group string, hdr, payload []byte, qos byte, clone bool) (m *Msg, dropped bool) {
	return s.sendExpiring(topic, group, hdr, payload, qos, clone, 0)
}

func (s *Session) sendExpiring(topic, group string, hdr, payload []byte, qos byte, clone bool, expires int64) (m *Msg, dropped bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fullFor(topic, payload) {
		return nil, true
	}
	if clone {
		payload = bytes.Clone(payload)
		hdr = bytes.Clone(hdr)
	}
	if expires == 0 {
		expires = headerExpires(hdr)
	}
	m = &Msg{Topic: topic, QoS: qos, Payload: payload, Hdr: hdr, Expires: expires, Group: group}
	s.hold(m)
	if len(s.inflight) < s.maxInflight && len(s.queue) == 0 {
		s.markDirty()
		s.assign(m)
		return m, false
	}
	s.enqueue(m)
	return nil, false
}

// Enqueue keeps a message for later (the client is offline). It reports
// false when the session is full and the message is discarded.
func (s *Session) Enqueue(topic string, payload []byte, qos byte) bool {
	return s.enqueueMsg(topic, nil, payload, qos, false)
}

// EnqueueCopy is Enqueue for a payload the caller does not own: it is
// copied only once the session has room for it.
func (s *Session) EnqueueCopy(topic string, payload []byte, qos byte) bool {
	return s.enqueueMsg(topic, nil, payload, qos, true)
}

// EnqueueCopy5 is EnqueueCopy keeping the message's header block when an
// MQTT 5 client held the session last.
func (s *Session) EnqueueCopy5(topic string, hdr, payload []byte, qos byte) bool {
	return s.enqueueMsg(topic, hdr, payload, qos, true)
}

func (s *Session) enqueueMsg(topic string, hdr, payload []byte, qos byte, clone bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.v5 {
		hdr = nil
	}
	if s.fullFor(topic, payload) {
		return false
	}
	if clone {
		payload = bytes.Clone(payload)
		hdr = bytes.Clone(hdr)
	}
	m := &Msg{Topic: topic, QoS: qos, Payload: payload, Hdr: hdr, Expires: headerExpires(hdr)}
	s.hold(m)
	s.enqueue(m)
	return true
}

// markDirty records that the snapshot changed and lists the session for
// the housekeeping's save once. Caller holds mu.
func (s *Session) markDirty() {
	s.dirty = true
	if !s.listed && s.onDirty != nil {
		s.listed = true
		s.onDirty(s)
	}
}

// SetDirtyHook sets the function that lists the session for saving when it
// becomes dirty (see Persister.SaveDirty); it is listed now if it already is.
func (s *Session) SetDirtyHook(fn func(*Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDirty = fn
	if s.dirty {
		s.markDirty()
	}
}

// SetJournal sets the functions that record each queued message and
// remove its record, and records the queued messages that have none (read
// from an earlier version's snapshot).
func (s *Session) SetJournal(journal func(*Msg) uint64, forget func(seq uint64)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.journal, s.forget = journal, forget
	if journal == nil {
		return
	}
	// Records keep the queue's order: from the first message without one,
	// every message is recorded again (once, on the first start after an
	// upgrade).
	from := slices.IndexFunc(s.queue, func(m *Msg) bool { return m.Seq == 0 })
	if from < 0 {
		return
	}
	for _, m := range s.queue[from:] {
		if m.Seq != 0 && forget != nil {
			forget(m.Seq)
		}
		m.Seq = journal(m)
	}
	s.markDirty() // the next snapshot leaves them out
}

// enqueue queues m, journaling it. Caller holds mu.
func (s *Session) enqueue(m *Msg) {
	if s.journal != nil {
		m.Seq = s.journal(m)
	}
	s.queue = append(s.queue, m)
}

// assign gives m a packet id no inflight message uses. Caller holds mu.
func (s *Session) assign(m *Msg) {
	for {
		s.nextID++
		if s.nextID == 0 {
			s.nextID = 1
		}
		if s.find(s.nextID) < 0 {
			break
		}
	}
	m.ID = s.nextID
	s.inflight = append(s.inflight, m)
}

func (s *Session) find(id uint16) int {
	for i, m := range s.inflight {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// Acked completes a delivery (PUBACK for QoS 1, PUBCOMP for QoS 2) and
// returns the queued messages that now fit in the window, ids assigned.
func (s *Session) Acked(id uint16) []*Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(id) // acks come mostly in order: usually index 0
	if i < 0 {
		return nil
	}
	s.unsent = min(s.unsent, len(s.inflight)) // Prune may have taken some
	if i >= len(s.inflight)-s.unsent {
		s.unsent-- // acked from an earlier connection's delivery
	}
	s.release(s.inflight[i])
	s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
	s.markDirty()
	var out []*Msg
	for s.unsent > 0 && len(s.inflight)-s.unsent < s.maxInflight {
		m := s.inflight[len(s.inflight)-s.unsent]
		m.resent = true
		out = append(out, m)
		s.unsent--
	}
	return append(out, s.refill()...)
}

// refill moves queued messages into the window. Caller holds mu.
func (s *Session) refill() []*Msg {
	var out []*Msg
	now := int64(0)
	for len(s.queue) > 0 && len(s.inflight) < s.maxInflight {
		m := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if m.Expires != 0 {
			if now == 0 {
				now = unixNow()
			}
			if m.expired(now) { // its message expiry interval ran out while queued
				s.release(m)
				s.markDirty()
				continue
			}
		}
		s.assign(m)
		out = append(out, m)
		s.markDirty()
	}
	return out
}

// Received records PUBREC for an outgoing QoS 2 message; the server answers
// with PUBREL whether or not it knows the id.
func (s *Session) Received(id uint16) {
	s.mu.Lock()
	if i := s.find(id); i >= 0 && s.inflight[i].QoS == 2 && !s.inflight[i].Released {
		m := s.inflight[i]
		s.heldBytes -= len(m.Payload)
		m.Released = true
		m.Payload = nil // never sent again
		s.markDirty()
	}
	s.mu.Unlock()
}

// Resume returns what a reconnecting client must get, in order: every
// inflight message again (the caller sets DUP, or sends PUBREL for released
// ones), then queued messages that fit in the window.
func (s *Session) Resume() []*Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	// No more than the client's window: the rest follow as acks free it.
	n := min(len(s.inflight), s.maxInflight)
	s.unsent = len(s.inflight) - n
	out := append([]*Msg(nil), s.inflight[:n]...)
	return append(out, s.refill()...)
}

// IncomingQoS2 records an incoming QoS 2 packet id and reports whether it is
// new (a PUBLISH repeated before PUBREL must not be delivered twice); ok is
// false, nothing recorded, for a new id when limit (0: none) ids already
// await PUBREL.
func (s *Session) IncomingQoS2(id uint16, limit int) (isNew, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.qos2In[id]; dup {
		return false, true
	}
	if limit > 0 && len(s.qos2In) >= limit {
		return false, false
	}
	if s.qos2In == nil {
		s.qos2In = make(map[uint16]struct{}) // made for the first QoS 2 publish
	}
	s.qos2In[id] = struct{}{}
	s.markDirty()
	return true, true
}

// Release forgets an incoming QoS 2 id on PUBREL.
func (s *Session) Release(id uint16) {
	s.mu.Lock()
	delete(s.qos2In, id)
	s.markDirty()
	s.mu.Unlock()
}

// snapshot is a session's persistent form, without its queue: queued
// messages are journal records of their own, so a snapshot's size does not
// depend on how much is queued. Inflight messages that were queued appear
// by their journal sequence only.
type snapshot struct {
	ID       string          `json:"id"`
	Owner    string          `json:"owner,omitempty"`
	Subs     map[string]byte `json:"subs,omitempty"`
	Inflight []Msg           `json:"inflight,omitempty"`
	NextID   uint16          `json:"next_id,omitempty"`
	QoS2In   []uint16        `json:"qos2_in,omitempty"`
	// MQTT 5: the protocol, the session expiry interval (absent: never),
	// when the client left, the subscription identifiers.
	V5      bool              `json:"v5,omitempty"`
	Expiry  *uint32           `json:"expiry,omitempty"`
	Offline int64             `json:"offline,omitempty"`
	SubIDs  map[string]uint32 `json:"sub_ids,omitempty"`
	Will    *willSnapshot     `json:"will,omitempty"`
	// Queue is read from snapshots of earlier versions only.
	Queue []*Msg `json:"queue,omitempty"`
}

// willSnapshot is a will in a snapshot: its message, retain flag and when
// it is due (unix milliseconds), or, armed while its client is connected
// (due 0), its will delay interval.
type willSnapshot struct {
	Retained
	Retain bool   `json:"retain,omitempty"`
	Due    int64  `json:"due"`
	Delay  uint32 `json:"delay,omitempty"`
}

// snapshot encodes the session when it changed since the last snapshot (or
// when force is set); it returns nil otherwise. Caller holds mu.
func (s *Session) snapshot(force bool) []byte {
	if !s.dirty && !force {
		return nil
	}
	s.dirty = false
	snap := snapshot{ID: s.ID, Owner: s.owner, Subs: s.subs, NextID: s.nextID,
		V5: s.v5, Offline: s.offlineSince, SubIDs: s.subIDs}
	if s.expiry != ExpiryNever {
		snap.Expiry = &s.expiry
	}
	if w := s.will; w != nil {
		snap.Will = &willSnapshot{Retained: *w.r, Retain: w.retain, Due: w.due, Delay: w.delay}
	}
	snap.Inflight = make([]Msg, len(s.inflight))
	for i, m := range s.inflight {
		snap.Inflight[i] = *m
		if m.Seq != 0 {
			snap.Inflight[i].Payload = nil // in its journal record
		}
	}
	for id := range s.qos2In {
		snap.QoS2In = append(snap.QoS2In, id)
	}
	b, _ := json.Marshal(&snap)
	return b
}

// restoreSession decodes a snapshot into a persistent session. Inflight
// messages that were journaled wait for their records (see restoreQueued).
func restoreSession(b []byte) (*Session, error) {
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil {
		return nil, err
	}
	s := NewSession(snap.ID, false)
	s.owner = snap.Owner
	s.v5, s.offlineSince, s.subIDs = snap.V5, snap.Offline, snap.SubIDs
	if snap.Expiry != nil {
		s.expiry = *snap.Expiry
	}
	if w := snap.Will; w != nil {
		s.will = &delayedWill{r: &w.Retained, retain: w.Retain, due: w.Due, delay: w.Delay}
	}
	if snap.Subs != nil {
		s.subs = snap.Subs
	}
	s.nextID = snap.NextID
	for i := range snap.Inflight {
		m := &snap.Inflight[i]
		s.inflight = append(s.inflight, m)
		if m.Seq == 0 {
			s.hold(m)
		}
	}
	for _, m := range snap.Queue {
		m.ID, m.Seq = 0, 0
		s.hold(m)
		s.queue = append(s.queue, m)
	}
	for _, id := range snap.QoS2In {
		if s.qos2In == nil {
			s.qos2In = make(map[uint16]struct{})
		}
		s.qos2In[id] = struct{}{}
	}
	return s, nil
}

// restoreQueued adds a journal record found at start-up: the payload of
// in, an inflight message that was queued, or else a queued message. It
// runs before the session is shared and takes no lock (Load holds the
// persister's, which comes after a session's in the lock order). Limits do
// not apply: what was accepted before the restart is kept.
func (s *Session) restoreQueued(in, m *Msg, seq uint64) *Msg {
	if in != nil {
		if !in.Released {
			in.Payload = m.Payload
		}
		s.hold(in)
		return in
	}
	m.ID, m.Released, m.Seq = 0, false, seq
	s.hold(m)
	s.queue = append(s.queue, m)
	return m
}

// dropUnrestored forgets inflight messages whose journal record is gone:
// acknowledged just before a crash that came before the next snapshot.
func (s *Session) dropUnrestored(missing map[uint64]*Msg) {
	out := s.inflight[:0]
	for _, m := range s.inflight {
		if m.Seq == 0 || missing[m.Seq] == nil {
			out = append(out, m)
		}
	}
	clear(s.inflight[len(out):])
	s.inflight = out
}

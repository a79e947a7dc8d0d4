package jetstream

// Concurrency: runs on the JetStream Manager goroutine only (advise uses
// Host.Interest, which is called there only); no locks.

import (
	"math/rand/v2"
	"strings"
	"time"
)

// Advisories, as nats-server publishes them: JSON events on
// $JS.EVENT.ADVISORY.* subjects whose shapes are its JSStreamActionAdvisory,
// JSConsumerActionAdvisory, JSAPIAudit, JSConsumerDeliveryExceededAdvisory
// and JSConsumerDeliveryTerminatedAdvisory (field names and type strings
// are the wire contract that tools such as natscli's `events` decode). An
// advisory nobody subscribes to is not encoded at all.
const (
	advStreamCreated   = "$JS.EVENT.ADVISORY.STREAM.CREATED."
	advStreamDeleted   = "$JS.EVENT.ADVISORY.STREAM.DELETED."
	advStreamUpdated   = "$JS.EVENT.ADVISORY.STREAM.UPDATED."
	advConsumerCreated = "$JS.EVENT.ADVISORY.CONSUMER.CREATED."
	advConsumerDeleted = "$JS.EVENT.ADVISORY.CONSUMER.DELETED."
	advMaxDeliveries   = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."
	advMsgTerminated   = "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED."
	advMsgNaked        = "$JS.EVENT.ADVISORY.CONSUMER.MSG_NAKED."
	advPause           = "$JS.EVENT.ADVISORY.CONSUMER.PAUSE."
	advPinned          = "$JS.EVENT.ADVISORY.CONSUMER.PINNED."
	advUnpinned        = "$JS.EVENT.ADVISORY.CONSUMER.UNPINNED."
	typePause          = "io.nats.jetstream.advisory.v1.consumer_pause"
	typePinned         = "io.nats.jetstream.advisory.v1.consumer_group_pinned"
	typeUnpinned       = "io.nats.jetstream.advisory.v1.consumer_group_unpinned"
	advBatchAbandoned  = "$JS.EVENT.ADVISORY.STREAM.BATCH_ABANDONED."
	typeBatchAbandoned = "io.nats.jetstream.advisory.v1.stream_batch_abandoned"
	batchTimedOut      = "timeout"
	batchIncomplete    = "incomplete"
	batchLarge         = "large"
	batchUnsupported   = "unsupported"
	globalAccount      = "$G" // the account nats-server names in pin advisories; evnats has only this one
	typeNak            = "io.nats.jetstream.advisory.v1.nak"
	advAPIAudit        = "$JS.EVENT.ADVISORY.API"
	typeStreamAction   = "io.nats.jetstream.advisory.v1.stream_action"
	typeConsumerAction = "io.nats.jetstream.advisory.v1.consumer_action"
	typeAPIAudit       = "io.nats.jetstream.advisory.v1.api_audit"
	typeMaxDeliver     = "io.nats.jetstream.advisory.v1.max_deliver"
	typeTerminated     = "io.nats.jetstream.advisory.v1.terminated"
	actionCreate       = "create"
	actionDelete       = "delete"
	actionModify       = "modify"
	eventIDLen         = 22
	eventIDDigits      = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// typedEvent is the head every advisory has.
type typedEvent struct {
	Type string    `json:"type"`
	ID   string    `json:"id"`
	Time time.Time `json:"timestamp"`
}

type streamActionAdvisory struct {
	typedEvent
	Stream string `json:"stream"`
	Action string `json:"action"`
	Domain string `json:"domain,omitempty"`
}

type consumerActionAdvisory struct {
	typedEvent
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Action   string `json:"action"`
	Domain   string `json:"domain,omitempty"`
}

// apiAuditAdvisory reports one answered API request, with the client
// that sent it as nats-server's (null when the server does not know it:
// a request that came over a link or an import).
type apiAuditAdvisory struct {
	typedEvent
	Server   string      `json:"server"`
	Client   *ClientInfo `json:"client"`
	Subject  string      `json:"subject"`
	Request  string      `json:"request,omitempty"`
	Response string      `json:"response"`
	Domain   string      `json:"domain,omitempty"`
}

// ClientInfo is nats-server's ClientInfo in advisories (its JSON names),
// the fields evnats knows: who sent an API request.
type ClientInfo struct {
	Start   *time.Time    `json:"start,omitempty"`
	Host    string        `json:"host,omitempty"`
	ID      uint64        `json:"id,omitempty"`
	Account string        `json:"acc,omitempty"`
	User    string        `json:"user,omitempty"`
	Name    string        `json:"name,omitempty"`
	Lang    string        `json:"lang,omitempty"`
	Version string        `json:"ver,omitempty"`
	RTT     time.Duration `json:"rtt,omitempty"`
	Server  string        `json:"server,omitempty"`
	Kind    string        `json:"kind,omitempty"`
	Type    string        `json:"client_type,omitempty"`
}

type maxDeliverAdvisory struct {
	typedEvent
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
	Domain     string `json:"domain,omitempty"`
}

type terminatedAdvisory struct {
	typedEvent
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	ConsumerSeq uint64 `json:"consumer_seq"`
	StreamSeq   uint64 `json:"stream_seq"`
	Deliveries  uint64 `json:"deliveries"`
	Reason      string `json:"reason,omitempty"`
	Domain      string `json:"domain,omitempty"`
}

// event is a new advisory head of type typ: a random 22-character id (as
// long as nats-server's nuid) and the time in UTC.
func event(typ string) typedEvent {
	var b [eventIDLen]byte
	for i := range b {
		b[i] = eventIDDigits[rand.IntN(len(eventIDDigits))]
	}
	return typedEvent{Type: typ, ID: string(b[:]), Time: time.Now().UTC()}
}

// advise publishes an advisory if anyone listens on subject; build makes
// it only then.
func (m *Manager) advise(subject string, build func() any) {
	if !m.host.Interest(subject) {
		return
	}
	m.host.Publish(subject, "", nil, mustJSON(build()))
}

func (m *Manager) adviseStream(prefix, action, stream string) {
	m.advise(prefix+stream, func() any {
		return streamActionAdvisory{typedEvent: event(typeStreamAction), Domain: m.cfg.Domain, Stream: stream, Action: action}
	})
}

func (m *Manager) adviseConsumer(prefix, action string, c *consumer) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(prefix+stream+"."+name, func() any {
		return consumerActionAdvisory{typedEvent: event(typeConsumerAction), Domain: m.cfg.Domain, Stream: stream, Consumer: name, Action: action}
	})
}

// adviseAudit reports an answered API request.
func (m *Manager) adviseAudit(r *request, resp []byte) {
	m.advise(advAPIAudit, func() any {
		return apiAuditAdvisory{typedEvent: event(typeAPIAudit), Domain: m.cfg.Domain, Server: m.cfg.ServerName, Client: r.client, Subject: r.subject,
			Request: string(r.data), Response: string(resp)}
	})
}

// adviseMaxDeliver reports that c gave up redelivering a message after
// n.deliveries attempts (consumer_core.go: exceed, once per message).
func (m *Manager) adviseMaxDeliver(c *consumer, n pendingNote) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advMaxDeliveries+stream+"."+name, func() any {
		return maxDeliverAdvisory{typedEvent: event(typeMaxDeliver), Domain: m.cfg.Domain, Stream: stream, Consumer: name, StreamSeq: n.sseq,
			Deliveries: uint64(n.deliveries)}
	})
}

type nakAdvisory struct {
	typedEvent
	Stream      string `json:"stream"`
	Consumer    string `json:"consumer"`
	ConsumerSeq uint64 `json:"consumer_seq"`
	StreamSeq   uint64 `json:"stream_seq"`
	Deliveries  uint64 `json:"deliveries"`
	Domain      string `json:"domain,omitempty"`
}

// adviseNak reports a -NAK of a message c has pending.
func (m *Manager) adviseNak(c *consumer, n pendingNote) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advMsgNaked+stream+"."+name, func() any {
		return nakAdvisory{typedEvent: event(typeNak), Domain: m.cfg.Domain, Stream: stream, Consumer: name, ConsumerSeq: n.dseq,
			StreamSeq: n.sseq, Deliveries: uint64(n.deliveries)}
	})
}

// adviseTerm reports a +TERM ack with the numbers of its ack subject and
// the reason the client gave after "+TERM".
func (m *Manager) adviseTerm(c *consumer, t ackTokens, body []byte) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advMsgTerminated+stream+"."+name, func() any {
		reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(body)), "+TERM"))
		return terminatedAdvisory{typedEvent: event(typeTerminated), Domain: m.cfg.Domain, Stream: stream, Consumer: name,
			ConsumerSeq: t.dseq, StreamSeq: t.sseq, Deliveries: t.delivered, Reason: reason}
	})
}

type pauseAdvisory struct {
	typedEvent
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	Paused     bool      `json:"paused"`
	PauseUntil time.Time `json:"pause_until,omitempty"` // a struct: always there, zero when resumed (as nats-server's)
	Domain     string    `json:"domain,omitempty"`
}

// pauseChanged follows a change of c's pause_until from prev: an advisory
// when the time differs (as nats-server's config update), and a watch for
// its end when it is in the future.
func (m *Manager) pauseChanged(c *consumer, prev *time.Time, now time.Time) {
	var old, cur time.Time
	if prev != nil {
		old = *prev
	}
	if c.cfg.PauseUntil != nil {
		cur = *c.cfg.PauseUntil
	}
	if old.Equal(cur) {
		return
	}
	c.pauseEnds = c.paused(now)
	m.touch(c) // the pause's end is a deadline
	m.advisePause(c, cur, now)
}

func (m *Manager) advisePause(c *consumer, until, now time.Time) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advPause+stream+"."+name, func() any {
		return pauseAdvisory{typedEvent: event(typePause), Domain: m.cfg.Domain, Stream: stream, Consumer: name, Paused: now.Before(until),
			PauseUntil: until}
	})
}

type pinnedAdvisory struct {
	typedEvent
	Account  string `json:"account,omitempty"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Domain   string `json:"domain,omitempty"`
	Group    string `json:"group"`
	PinnedID string `json:"pinned_id"`
}

type unpinnedAdvisory struct {
	typedEvent
	Account  string `json:"account,omitempty"`
	Stream   string `json:"stream"`
	Consumer string `json:"consumer"`
	Domain   string `json:"domain,omitempty"`
	Group    string `json:"group"`
	Reason   string `json:"reason"`
}

// advisePinned reports the pin c gave to a pull of group.
func (m *Manager) advisePinned(c *consumer, group, id string) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advPinned+stream+"."+name, func() any {
		return pinnedAdvisory{typedEvent: event(typePinned), Domain: m.cfg.Domain, Account: globalAccount, Stream: stream, Consumer: name,
			Group: group, PinnedID: id}
	})
}

// adviseUnpinned reports a pin dropped by its timeout ("timeout") or by
// the UNPIN API ("admin").
func (m *Manager) adviseUnpinned(c *consumer, group, reason string) {
	stream, name := c.st.cfg.Name, c.name
	m.advise(advUnpinned+stream+"."+name, func() any {
		return unpinnedAdvisory{typedEvent: event(typeUnpinned), Domain: m.cfg.Domain, Account: globalAccount, Stream: stream, Consumer: name,
			Group: group, Reason: reason}
	})
}

type batchAbandonedAdvisory struct {
	typedEvent
	Account string `json:"account,omitempty"`
	Stream  string `json:"stream"`
	Domain  string `json:"domain,omitempty"`
	BatchID string `json:"batch"`
	Reason  string `json:"reason"`
}

// adviseBatchAbandoned reports an atomic batch dropped before its commit:
// it timed out, had a gap, or grew too large. As in an account of
// nats-server (its system account's copy adds the account name).
func (m *Manager) adviseBatchAbandoned(st *stream, id, reason string) {
	stream := st.cfg.Name
	m.advise(advBatchAbandoned+stream, func() any {
		return batchAbandonedAdvisory{typedEvent: event(typeBatchAbandoned), Domain: m.cfg.Domain, Stream: stream, BatchID: id, Reason: reason}
	})
}

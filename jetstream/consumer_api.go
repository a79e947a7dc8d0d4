package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"encoding/json"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	typeConsumerCreate = "io.nats.jetstream.api.v1.consumer_create_response"
	typeConsumerInfo   = "io.nats.jetstream.api.v1.consumer_info_response"
	typeConsumerDelete = "io.nats.jetstream.api.v1.consumer_delete_response"
	typeConsumerNames  = "io.nats.jetstream.api.v1.consumer_names_response"
	typeConsumerList   = "io.nats.jetstream.api.v1.consumer_list_response"
	typeConsumerPause  = "io.nats.jetstream.api.v1.consumer_pause_response"
)

type createConsumerRequest struct {
	Stream string         `json:"stream_name"`
	Config ConsumerConfig `json:"config"`
	Action string         `json:"action"`
}

type consumerInfoResponse struct {
	apiResponse
	*ConsumerInfo
}

type consumerNamesResponse struct {
	apiResponse
	Total     int      `json:"total"`
	Offset    int      `json:"offset"`
	Limit     int      `json:"limit"`
	Consumers []string `json:"consumers"`
}

type consumerListResponse struct {
	apiResponse
	Total     int             `json:"total"`
	Offset    int             `json:"offset"`
	Limit     int             `json:"limit"`
	Consumers []*ConsumerInfo `json:"consumers"`
}

// consumerAPI serves the CONSUMER.* requests; op has "$JS.API." removed.
func (m *Manager) consumerAPI(op string, r *request) []byte {
	toks := strings.Split(op, ".")
	now := time.Now().UTC()
	switch {
	case len(toks) == 3 && toks[1] == "CREATE":
		return m.consumerCreate(toks[2], "", "", ccLegacyEphemeral, r.data, now)
	case len(toks) >= 4 && toks[1] == "CREATE":
		filter := ""
		if len(toks) >= 5 {
			filter = strings.Join(toks[4:], ".")
		}
		return m.consumerCreate(toks[2], toks[3], filter, ccNew, r.data, now)
	case len(toks) >= 3 && toks[1] == "DURABLE" && toks[2] == "CREATE":
		if len(toks) != 5 {
			return m.fail(typeConsumerCreate, newErr(errDurableNotInSubj))
		}
		return m.consumerCreate(toks[3], toks[4], "", ccLegacyDurable, r.data, now)
	case len(toks) >= 5 && toks[1] == "MSG" && toks[2] == "NEXT":
		m.nextRequest(toks[3], toks[4], r, now)
		return nil
	case len(toks) == 4 && (toks[1] == "INFO" || toks[1] == "DELETE"):
		typ := typeConsumerInfo
		if toks[1] == "DELETE" {
			typ = typeConsumerDelete
		}
		st := m.streams[toks[2]]
		if st == nil {
			return m.fail(typ, newErr(errStreamNotFound))
		}
		c := st.consumers[toks[3]]
		if c == nil {
			return m.fail(typ, newErr(errConsumerNotFound))
		}
		if toks[1] == "INFO" {
			return mustJSON(consumerInfoResponse{apiResponse{Type: typ}, c.info(now)})
		}
		err := m.deleteConsumer(c)
		m.adviseConsumer(advConsumerDeleted, actionDelete, c) // gone from memory either way
		if err != nil {
			return m.fail(typ, newErr(errStreamGeneral, "err", m.publicErr(err)))
		}
		return mustJSON(successResponse{apiResponse{Type: typ}, true})
	case len(toks) == 4 && toks[1] == "PAUSE":
		return m.consumerPause(toks[2], toks[3], r.data, now)
	case len(toks) == 4 && toks[1] == "UNPIN":
		return m.consumerUnpin(toks[2], toks[3], r.data, now)
	case len(toks) == 3 && (toks[1] == "NAMES" || toks[1] == "LIST"):
		return m.consumerNames(toks[2], toks[1] == "LIST", r.data, now)
	}
	return m.fail("io.nats.jetstream.api.v1.error_response", newErr(errBadRequest))
}

// The consumer create request forms, which name the consumer differently.
const (
	ccNew             = iota // CONSUMER.CREATE.<stream>.<name>[.<filter>]
	ccLegacyEphemeral        // CONSUMER.CREATE.<stream>, the name (if any) in the body
	ccLegacyDurable          // CONSUMER.DURABLE.CREATE.<stream>.<durable>
)

func (m *Manager) consumerCreate(streamName, name, filter string, kind int, body []byte, now time.Time) []byte {
	typ := typeConsumerCreate
	var req createConsumerRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
	}
	if req.Stream != "" && req.Stream != streamName {
		return m.fail(typ, newErr(errStreamMismatch))
	}
	cfg := req.Config
	var raw struct {
		Config   json.RawMessage `json:"config"`
		Pedantic bool            `json:"pedantic"`
	}
	_ = json.Unmarshal(body, &raw) // decoded above: it is valid JSON
	if raw.Pedantic {
		return m.fail(typ, errNoPedantic())
	}
	if k := unsupportedField(raw.Config, consumerFields); k != "" {
		return m.fail(typ, refuseConsumerField(k, cfg.DeliverSubject != ""))
	}
	if e := consumerName(kind, name, &cfg); e != nil {
		return m.fail(typ, e)
	}
	st := m.streams[streamName]
	if st == nil {
		return m.fail(typ, newErr(errStreamNotFound))
	}
	if filter != "" && cfg.FilterSubject != filter {
		return m.fail(typ, newErr(errFilterMismatch))
	}
	if e := checkConsumerLimits(&cfg); e != nil {
		return m.fail(typ, e)
	}
	applyConsumerLimits(st.cfg.ConsumerLimits, &cfg)
	if e := normalizeConsumer(&cfg); e != nil {
		return m.fail(typ, e)
	}
	if e := overConsumerLimits(st.cfg.ConsumerLimits, cfg); e != nil {
		return m.fail(typ, e)
	}
	if e := deliverCycle(st.cfg.Subjects, cfg.DeliverSubject); e != nil {
		return m.fail(typ, e)
	}
	cname := cfg.Durable
	if cname == "" {
		cname = cfg.Name
	}
	if cname == "" {
		cname = randomName()
		cfg.Name = cname
	}
	if old := st.consumers[cname]; old != nil {
		if req.Action == "create" && !sameJSON(old.cfg, cfg) {
			return m.fail(typ, newErr(errConsumerExists))
		}
		prevCfg, prevFilters := old.cfg, old.filters
		defer m.pauseChanged(old, prevCfg.PauseUntil, now) // after a failed write the config is prevCfg again: no change
		if cfg.PriorityPolicy != policyPinned {
			old.unpin() // no longer pinned_client: nothing carries the pin
		}
		old.cfg = cfg // update: the mutable fields take effect (writeMeta writes c.cfg)
		old.filters = filtersOf(cfg)
		m.touch(old) // its deadlines (inactive threshold) may have moved
		if old.log != nil {
			if err := old.writeMeta(); err != nil {
				old.cfg, old.filters = prevCfg, prevFilters // not persisted: nothing changed
				_ = old.writeMeta()                         // a write that failed after its rename put the new one there
				return m.fail(typ, newErr(errConsumerCreate, "err", m.publicErr(err)))
			}
		}
		return mustJSON(consumerInfoResponse{apiResponse{Type: typ}, old.info(now)})
	}
	if req.Action == "update" {
		return m.fail(typ, newErr(errConsumerNotExist))
	}
	if e := workQueueRules(st, cname, cfg); e != nil {
		return m.fail(typ, e)
	}
	if st.cfg.MaxConsumers > 0 && len(st.consumers) >= st.cfg.MaxConsumers ||
		m.cfg.MaxConsumers > 0 && len(st.consumers) >= m.cfg.MaxConsumers {
		return m.fail(typ, newErr(errMaxConsumers))
	}
	c := m.newConsumer(st, cname, cfg, now, now)
	c.start()
	if c.durable() {
		if err := m.createLog(c); err != nil {
			m.deleteConsumer(c)
			return m.fail(typ, newErr(errConsumerCreate, "err", m.publicErr(err)))
		}
	}
	m.adviseConsumer(advConsumerCreated, actionCreate, c)
	return mustJSON(consumerInfoResponse{apiResponse{Type: typ}, c.info(now)})
}

// newConsumer registers a consumer on st and subscribes its acks; the
// caller positions it (start) or restores it (replay).
func (m *Manager) newConsumer(st *stream, name string, cfg ConsumerConfig, created, now time.Time) *consumer {
	c := &consumer{st: st, name: name, cfg: cfg, created: created, filters: filtersOf(cfg),
		pending: make(map[uint64]*pendingAck), active: now}
	if c.push() {
		c.waiting = []*pullRequest{{reply: cfg.DeliverSubject, batch: int(^uint(0) >> 1), heartbeat: cfg.Heartbeat}}
		c.resume = func() { m.enqueue(request{resume: c}) }
	}
	c.pauseEnds = c.paused(now)
	st.consumers[name] = c
	c.startPump = true // a push consumer delivers what its stream has at once
	m.touch(c)         // its first deadlines (inactive threshold, pause) are armed after the batch
	c.unsub = m.host.Subscribe("$JS.ACK."+st.cfg.Name+"."+name+".>", func(subject, reply string, hdr, data []byte) {
		r := request{ack: c, subject: subject, reply: reply, data: clone(data)}
		if !m.handleInPlace(&r) {
			m.enqueue(r)
		}
	})
	return c
}

// workQueueRules checks a new consumer against a work-queue stream: each
// message goes to one consumer, so consumers need explicit acks, must start
// at the beginning and may not overlap.
func workQueueRules(st *stream, name string, cfg ConsumerConfig) *APIError {
	if st.cfg.Retention != "workqueue" {
		return nil
	}
	if cfg.AckPolicy != "explicit" {
		return newErr(errWQAckPolicy)
	}
	if cfg.DeliverPolicy != "all" {
		return newErr(errWQDeliverAll)
	}
	mine := filtersOf(cfg)
	for other, c := range st.consumers {
		if other == name {
			continue
		}
		if len(mine) == 0 || len(c.filters) == 0 {
			return newErr(errWQNotUnique)
		}
		for _, f := range mine {
			if collidesAny(f, c.filters) {
				return newErr(errWQNotUnique)
			}
		}
	}
	return nil
}

func filtersOf(cfg ConsumerConfig) []string {
	var f []string
	if cfg.FilterSubject != "" {
		f = append(f, cfg.FilterSubject)
	}
	return append(f, cfg.FilterSubjects...)
}

func sameJSON(a, b any) bool { return string(mustJSON(a)) == string(mustJSON(b)) }

func randomName() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 8)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// deleteConsumer removes c; the error says its files could not be removed
// (it is gone from memory either way).
func (m *Manager) deleteConsumer(c *consumer) error {
	if c.unsub != nil {
		c.unsub()
	}
	err := m.closeLog(c, true)
	for _, r := range c.waiting {
		m.host.Publish(r.reply, "", []byte("NATS/1.0 409 Consumer Deleted\r\n\r\n"), nil)
	}
	c.waiting = nil
	delete(c.st.consumers, c.name)
	c.st.sweepInterest() // what only this consumer still needed goes now
	return err
}

func (m *Manager) consumerNames(streamName string, list bool, body []byte, now time.Time) []byte {
	typ := typeConsumerNames
	if list {
		typ = typeConsumerList
	}
	st := m.streams[streamName]
	if st == nil {
		return m.fail(typ, newErr(errStreamNotFound))
	}
	var req pagedRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
		}
	}
	names := make([]string, 0, len(st.consumers))
	for n := range st.consumers {
		names = append(names, n)
	}
	sort.Strings(names)
	off := pageOffset(req.Offset, len(names))
	page := names[off:]
	if list {
		resp := consumerListResponse{apiResponse: apiResponse{Type: typ}, Total: len(names), Offset: off, Limit: listPage, Consumers: []*ConsumerInfo{}}
		for _, n := range page[:min(len(page), listPage)] {
			resp.Consumers = append(resp.Consumers, st.consumers[n].info(now))
		}
		return mustJSON(resp)
	}
	return mustJSON(consumerNamesResponse{apiResponse: apiResponse{Type: typ}, Total: len(names), Offset: off, Limit: namesPage, Consumers: page[:min(len(page), namesPage)]})
}

// nextRequest queues a MSG.NEXT pull request and delivers what it can.
func (m *Manager) nextRequest(streamName, name string, r *request, now time.Time) {
	if r.reply == "" {
		return
	}
	st := m.streams[streamName]
	var c *consumer
	if st != nil {
		c = st.consumers[name]
	}
	if c == nil {
		m.host.Publish(r.reply, "", []byte("NATS/1.0 404 No Messages\r\n\r\n"), nil)
		return
	}
	if c.push() {
		m.host.Publish(r.reply, "", []byte("NATS/1.0 409 Consumer is push based\r\n\r\n"), nil)
		return
	}
	if c.request(r.reply, r.data, now) {
		c.fx.pump = true
	}
	m.perform(c, now)
}

// request is the pull-request input of c's state machine
// (consumer_core.go): it parses a body (empty, a batch count, or JSON) and
// queues the request, or refuses it with a status effect to reply.
// MSG.NEXT and +NXT acks share it.
func (c *consumer) request(reply string, data []byte, now time.Time) bool {
	var nr nextRequest
	body := strings.TrimSpace(string(data))
	isJSON := false
	switch {
	case body == "":
		nr.Batch = 1
	case body[0] == '{':
		if json.Unmarshal([]byte(body), &nr) != nil {
			c.status(reply, []byte("NATS/1.0 400 Bad Request\r\n\r\n"))
			return false
		}
		isJSON = true
	default:
		nr.Batch, _ = strconv.Atoi(body)
	}
	nr.Batch = max(nr.Batch, 1)
	if c.cfg.MaxRequestBatch > 0 && nr.Batch > c.cfg.MaxRequestBatch {
		c.status(reply, []byte("NATS/1.0 409 Exceeded MaxRequestBatch of "+strconv.Itoa(c.cfg.MaxRequestBatch)+"\r\n\r\n"))
		return false
	}
	if nr.Expires > 0 && c.cfg.MaxRequestExpires > 0 && nr.Expires > c.cfg.MaxRequestExpires {
		c.status(reply, []byte("NATS/1.0 409 Exceeded MaxRequestExpires of "+c.cfg.MaxRequestExpires.String()+"\r\n\r\n"))
		return false
	}
	if nr.MaxBytes > 0 && c.cfg.MaxRequestBytes > 0 && nr.MaxBytes > c.cfg.MaxRequestBytes {
		c.status(reply, []byte("NATS/1.0 409 Exceeded MaxRequestMaxBytes of "+strconv.Itoa(c.cfg.MaxRequestBytes)+"\r\n\r\n"))
		return false
	}
	if isJSON && !c.admitPull(nr.pullPriority, reply, now) {
		return false
	}
	if len(c.waiting) >= c.cfg.MaxWaiting {
		c.status(reply, []byte("NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n"))
		return false
	}
	req := &pullRequest{reply: reply, batch: nr.Batch, maxBytes: nr.MaxBytes, noWait: nr.NoWait, heartbeat: nr.Heartbeat, lastSent: now,
		group: nr.Group, minPending: nr.MinPending, minAckPending: nr.MinAckPending, pinID: nr.ID, priority: nr.Priority}
	if nr.Expires > 0 {
		req.expires = now.Add(nr.Expires)
	}
	c.active = now
	c.enqueuePull(req)
	return true
}

package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
)

const (
	namesPage = 1024
	listPage  = 256
)

// api serves one $JS.API request and returns the JSON reply.
func (m *Manager) api(r *request) []byte {
	op := strings.TrimPrefix(r.subject, "$JS.API.")
	if strings.HasPrefix(op, "DIRECT.GET.") {
		m.directGet(op, r)
		return nil
	}
	if needsHigherLevel(r.hdr) { // reqlevel.go
		if strings.HasPrefix(op, "CONSUMER.MSG.NEXT.") {
			if r.reply != "" {
				m.host.Publish(r.reply, "", []byte("NATS/1.0 412 Required Api Level\r\n\r\n"), nil)
			}
			return nil
		}
		return m.fail(apiResponseType(op), newErr(errLevelRequired))
	}
	if strings.HasPrefix(op, "CONSUMER.") {
		return m.consumerAPI(op, r)
	}
	verb, name := op, ""
	for _, p := range []string{"STREAM.CREATE.", "STREAM.UPDATE.", "STREAM.INFO.", "STREAM.DELETE.",
		"STREAM.PURGE.", "STREAM.MSG.GET.", "STREAM.MSG.DELETE."} {
		if strings.HasPrefix(op, p) {
			verb, name = strings.TrimSuffix(p, "."), op[len(p):]
			break
		}
	}
	switch verb {
	case "INFO":
		return m.accountInfo()
	case "STREAM.NAMES":
		return m.streamNames(r.data)
	case "STREAM.LIST":
		return m.streamList(r.data)
	case "STREAM.CREATE":
		return m.streamCreate(name, r.data, false)
	case "STREAM.UPDATE":
		return m.streamCreate(name, r.data, true)
	}
	st := m.streams[name]
	typ := map[string]string{"STREAM.INFO": typeStreamInfo, "STREAM.DELETE": typeDelete, "STREAM.PURGE": typePurge,
		"STREAM.MSG.GET": typeMsgGet, "STREAM.MSG.DELETE": typeMsgDelete}[verb]
	if typ == "" {
		return m.fail("io.nats.jetstream.api.v1.error_response", newErr(errBadRequest))
	}
	if st == nil {
		return m.fail(typ, newErr(errStreamNotFound))
	}
	now := time.Now()
	switch verb {
	case "STREAM.INFO":
		return mustJSON(streamInfoPaged{apiResponse: apiResponse{Type: typeStreamInfo}, StreamInfo: m.streamInfo(st, now)})
	case "STREAM.DELETE":
		consumers := make([]*consumer, 0, len(st.consumers))
		for _, c := range st.consumers {
			consumers = append(consumers, c)
		}
		if err := m.deleteStream(st); err != nil {
			return m.fail(typ, newErr(errStreamConfig, "err", m.publicErr(err)))
		}
		for _, c := range consumers { // as nats-server: the consumers' first, then the stream's
			m.adviseConsumer(advConsumerDeleted, actionDelete, c)
		}
		m.adviseStream(advStreamDeleted, actionDelete, name)
		return mustJSON(successResponse{apiResponse{Type: typ}, true})
	case "STREAM.PURGE":
		var req purgeRequest
		if len(r.data) > 0 {
			if err := json.Unmarshal(r.data, &req); err != nil {
				return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
			}
		}
		n, e, err := st.purgeMsgs(req)
		if err != nil {
			e = newErr(errStreamPurge, "err", m.publicErr(err))
		}
		if e != nil {
			return m.fail(typ, e)
		}
		return mustJSON(purgeResponse{apiResponse{Type: typ}, true, n})
	case "STREAM.MSG.GET":
		return m.msgGet(st, r.data)
	default: // STREAM.MSG.DELETE
		var req msgDeleteRequest
		if err := json.Unmarshal(r.data, &req); err != nil {
			return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
		}
		if e := st.deleteMsg(req.Seq); e != nil {
			return m.fail(typ, e)
		}
		return mustJSON(successResponse{apiResponse{Type: typ}, true})
	}
}

func (m *Manager) fail(typ string, e *APIError) []byte {
	m.apiErrors++
	return mustJSON(apiResponse{Type: typ, Error: m.public(e)})
}

func (m *Manager) accountInfo() []byte {
	resp := accountInfoResponse{apiResponse: apiResponse{Type: typeInfo}, Streams: len(m.streams),
		Limits: accountLimits{MaxMemory: orUnlimited(m.cfg.MaxMemory), MaxStorage: orUnlimited(m.cfg.MaxStore),
			MaxStreams: int(orUnlimited(int64(m.cfg.MaxStreams))), MaxConsumers: int(orUnlimited(int64(m.cfg.MaxConsumers))), MaxAckPending: -1,
			MemoryMaxStreamBytes: -1, StoreMaxStreamBytes: -1},
		API:    apiStats{Level: apiLevel, Total: m.apiTotal, Errors: m.apiErrors},
		Domain: m.cfg.Domain,
	}
	for _, st := range m.streams {
		used, reserved := &resp.Storage, &resp.ReservedStore
		if st.cfg.Storage == "memory" {
			used, reserved = &resp.Memory, &resp.ReservedMemory
		}
		*used += st.store.State().Bytes
		if st.cfg.MaxBytes > 0 { // a stream's max_bytes is reserved for it
			*reserved += uint64(st.cfg.MaxBytes)
		}
		resp.Consumers += len(st.consumers)
	}
	return mustJSON(resp)
}

func orUnlimited(v int64) int64 {
	if v <= 0 {
		return -1
	}
	return v
}

func (m *Manager) streamCreate(name string, body []byte, update bool) []byte {
	typ := typeCreate
	if update {
		typ = typeUpdate
	}
	var cfg StreamConfig
	if err := json.Unmarshal(body, &cfg); err != nil {
		return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Name != name {
		return m.fail(typ, newErr(errStreamMismatch))
	}
	if k := unsupportedField(body, streamFields); k != "" {
		return m.fail(typ, refuseStreamField(k))
	}
	if k := unsupportedSourceField(body); k != "" {
		return m.fail(typ, refuseStreamField(k))
	}
	if e := normalize(&cfg); e != nil {
		return m.fail(typ, e)
	}
	if e := m.originRules(&cfg); e != nil {
		return m.fail(typ, e)
	}
	if m.overlaps(&cfg) {
		return m.fail(typ, newErr(errSubjectOverlap))
	}
	now := time.Now().UTC()
	existing := m.streams[name]
	switch {
	case update && existing == nil:
		return m.fail(typ, newErr(errStreamNotFound))
	case update:
		if e := updateRules(existing.cfg, &cfg); e != nil {
			return m.fail(typ, e)
		}
		if e := mirrorUpdateRules(&existing.cfg, &cfg); e != nil {
			return m.fail(typ, e)
		}
		if e := limitsViolated(existing, cfg.ConsumerLimits); e != nil {
			return m.fail(typ, e)
		}
		if e := updateFormsCycle(existing, &cfg); e != nil {
			return m.fail(typ, e)
		}
		prev := existing.cfg
		existing.cfg = cfg // saveMeta writes st.cfg
		existing.compileStreamTransforms()
		if cfg.AllowMsgTTL && !prev.AllowMsgTTL {
			existing.indexTTLs() // copies stored before carry TTLs that now count, as in nats-server
		}
		if !cfg.AllowAtomic {
			existing.batches = nil // as nats-server: disabling drops staged batches
		}
		if !cfg.AllowBatched {
			existing.fast = nil
		}
		if err := m.saveMeta(existing); err != nil {
			existing.cfg = prev // not persisted: the client is told it failed, so nothing changed
			existing.compileStreamTransforms()
			if cfg.AllowMsgTTL && !prev.AllowMsgTTL {
				existing.indexTTLs()
			}
			_ = m.saveMeta(existing) // a write that failed after its rename put the new one there
			return m.fail(typ, newErr(errStreamConfig, "err", m.publicErr(err)))
		}
		m.subscribe(existing)
		m.setLinks(existing)
		existing.enforceLimits("")
		if cfg.AllowMsgTTL && !prev.AllowMsgTTL {
			existing.expireTTLs(now) // what is past its TTL goes before the reply, as in nats-server
		}
		m.adviseStream(advStreamUpdated, actionModify, name)
		return mustJSON(streamInfoResponse{apiResponse: apiResponse{Type: typ}, StreamInfo: m.streamInfo(existing, now)})
	case existing != nil:
		if !sameJSON(existing.cfg, cfg) {
			return m.fail(typ, newErr(errStreamNameInUse))
		}
		return mustJSON(streamInfoResponse{apiResponse: apiResponse{Type: typ}, StreamInfo: m.streamInfo(existing, now)})
	}
	if cfg.Sealed {
		return m.fail(typ, newErr(errStreamConfig, "err", "stream configuration for create can not be sealed"))
	}
	if m.cfg.MaxStreams > 0 && len(m.streams) >= m.cfg.MaxStreams {
		return m.fail(typ, newErr(errMaxStreams))
	}
	st, err := m.addStream(cfg, now)
	if err == nil && cfg.FirstSeq > 1 {
		_, err = st.store.Compact(cfg.FirstSeq) // an empty store: the next append gets first_seq
	}
	if err == nil {
		err = m.saveMeta(st)
	}
	if err != nil {
		if st != nil {
			_ = m.deleteStream(st)
		}
		return m.fail(typ, newErr(errStreamConfig, "err", m.publicErr(err)))
	}
	m.adviseStream(advStreamCreated, actionCreate, name)
	return mustJSON(streamInfoResponse{apiResponse: apiResponse{Type: typ}, StreamInfo: m.streamInfo(st, now), DidCreate: true})
}

func (m *Manager) streamNames(body []byte) []byte {
	var req pagedRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return m.fail(typeNames, newErr(errInvalidJSON, "err", m.publicErr(err)))
		}
	}
	all := m.sortedStreams(req.Subject)
	off := pageOffset(req.Offset, len(all))
	resp := namesResponse{apiResponse: apiResponse{Type: typeNames}, Total: len(all), Offset: off, Limit: namesPage, Streams: []string{}}
	for _, st := range all[off:min(len(all), off+namesPage)] {
		resp.Streams = append(resp.Streams, st.cfg.Name)
	}
	return mustJSON(resp)
}

func (m *Manager) streamList(body []byte) []byte {
	var req pagedRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return m.fail(typeList, newErr(errInvalidJSON, "err", m.publicErr(err)))
		}
	}
	all := m.sortedStreams(req.Subject)
	now := time.Now().UTC()
	off := pageOffset(req.Offset, len(all))
	resp := listResponse{apiResponse: apiResponse{Type: typeList}, Total: len(all), Offset: off, Limit: listPage, Streams: []*StreamInfo{}}
	for _, st := range all[off:min(len(all), off+listPage)] {
		resp.Streams = append(resp.Streams, m.streamInfo(st, now))
	}
	return mustJSON(resp)
}

// pageOffset clamps a client's page offset into [0, n], as nats-server does.
func pageOffset(off, n int) int { return min(max(off, 0), n) }

func (m *Manager) msgGet(st *stream, body []byte) []byte {
	var req msgGetRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return m.fail(typeMsgGet, newErr(errInvalidJSON, "err", m.publicErr(err)))
	}
	msg, err := st.get(req)
	if errors.Is(err, store.ErrNotFound) {
		return m.fail(typeMsgGet, newErr(errNoMessage))
	}
	if err != nil {
		return m.fail(typeMsgGet, newErr(errStoreFailed, "err", m.publicErr(err)))
	}
	return mustJSON(msgGetResponse{apiResponse: apiResponse{Type: typeMsgGet}, Message: &storedMsg{
		Subject: msg.Subject, Seq: msg.Seq, Header: msg.Hdr, Data: msg.Data, Time: time.Unix(0, msg.Time).UTC()}})
}

// get finds the message a get request names: by sequence, the last on a
// subject, or the next on a subject from a sequence.
func (st *stream) get(req msgGetRequest) (*store.Msg, error) {
	switch {
	case req.LastFor != "":
		return st.lastFor(req.LastFor)
	case req.NextFor != "":
		return st.store.LoadNext(req.NextFor, req.Seq)
	}
	return st.store.Load(req.Seq)
}

// lastFor returns the newest message on subject, which may hold wildcards.
func (st *stream) lastFor(subject string) (*store.Msg, error) {
	if !strings.ContainsAny(subject, "*>") {
		return st.store.LoadLast(subject)
	}
	var best *store.Msg
	for s := range st.perSubj {
		if !router.SubjectsCollide(subject, s) {
			continue
		}
		if m, err := st.store.LoadLast(s); err == nil && (best == nil || m.Seq > best.Seq) {
			best = m
		}
	}
	if best == nil {
		return nil, store.ErrNotFound
	}
	return best, nil
}

// streamInfo is st's info as the API shows it: this server leads it.
func (m *Manager) streamInfo(st *stream, now time.Time) *StreamInfo {
	info := st.info(now)
	if m.cfg.ServerName != "" {
		info.Cluster = &ClusterInfo{Leader: m.cfg.ServerName}
	}
	return info
}

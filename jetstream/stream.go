package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
)

// Header names clients use with JetStream publishes.
const (
	hdrMsgID             = "Nats-Msg-Id"
	hdrExpectedStream    = "Nats-Expected-Stream"
	hdrExpectedLastSeq   = "Nats-Expected-Last-Sequence"
	hdrExpectedSubjSeq   = "Nats-Expected-Last-Subject-Sequence"
	hdrExpectedLastMsgID = "Nats-Expected-Last-Msg-Id"
	hdrRollup            = "Nats-Rollup"
)

const defaultDuplicateWindow = 2 * time.Minute

// stream is one stream's state machine. Owned by the Manager goroutine.
type stream struct {
	cfg     StreamConfig
	created time.Time
	ident   string // identity(), once computed
	store   store.Store
	dir     string // file storage only
	unsub   []func()

	dedupe    map[string]dedupeEntry
	idOrder   fifo[idAt] // dedupe's ids in the order stored, for the window's expiry (forgetIDs)
	lastMsgID string
	perSubj   map[string]uint64 // message count per subject, for max_msgs_per_subject
	// subjFirst is, with max_msgs_per_subject set, a sequence at or below
	// each subject's oldest message (removals only raise the oldest), so
	// that enforceLimits finds the message to drop without walking the
	// stream from its start: a KV bucket's update used to cost a walk over
	// every message or gap before the key's previous revision.
	subjFirst map[string]uint64
	consumers map[string]*consumer
	batches   map[string]*atomicBatch // staged atomic batches by id (batch.go)
	fast      map[string]*fastBatch   // fast batches in progress by id (fastbatch.go)
	fastEnded map[string]*durableTail // ended fast batches whose replies wait for the store, by id
	// recovering is set while durable consumers replay their logs, so acks
	// being replayed do not apply retention a second time.
	recovering bool
	links      []*link   // its mirror or sources (mirror.go)
	feeds      []*stream // the streams with a link to this one, set by rewire
	feeding    bool      // feed is copying from this stream: it does not recur
	touched    bool      // in Manager.touchedStreams (timers.go: armStreams)
	waitHint   time.Time // a lower bound of the deadlines schedules and batches got since the last tick (armDeadline)

	ttls ttlIndex // expiries of messages with a Nats-TTL (ttl.go)
	// durable is a file store's completion for appends whose PubAck waits
	// (nil for a memory store, durable at once): it posts the Writer's
	// answer to the Manager's queue, where it releases acks, which holds
	// the PubAcks waiting for it in sequence order (stream_core.go).
	durable store.DoneFunc
	acks    ackQueue
	// fastDurable makes a file store's completion for a fast batch's
	// message (nil for a memory store): it posts to the Manager's queue,
	// where fastDone releases the batch's replies that wait for it.
	fastDurable func(reply string, t *durableTail, seq uint64) store.DoneFunc
	domain      string // the server's JetStream domain, in PubAcks
	// ingest and republish are the compiled subject_transform and
	// republish transforms (stream_transform.go); outbox holds what
	// stores queued for the Manager to publish (republish.go).
	ingest    *transform
	republish *transform
	outbox    []outMsg
	fx        streamEffects            // what its steps ask of the Manager (stream_core.go)
	schedules map[string]scheduleEntry // by subject (schedule.go)
	ageFrom   uint64                   // max_age scan start: below it only never-expiring messages remain
}

type dedupeEntry struct {
	seq uint64
	at  time.Time
}

// idAt is an id of the duplicate window and when it was stored.
type idAt struct {
	id string
	at time.Time
}

// dropIfUninterested removes message seq from an interest stream when no
// consumer whose filter matches its subject still needs it.
func (st *stream) dropIfUninterested(seq uint64) {
	if st.cfg.Retention != "interest" || st.recovering {
		return
	}
	m, err := st.store.Load(seq)
	if err != nil {
		return
	}
	for _, c := range st.consumers {
		if c.matches(m.Subject) && !c.done(seq) {
			return
		}
	}
	st.remove(seq, m.Subject)
}

// sweepInterest applies dropIfUninterested to every message, after the set
// of consumers changed.
func (st *stream) sweepInterest() {
	if st.cfg.Retention != "interest" {
		return
	}
	for seq := uint64(0); ; seq++ {
		m, err := st.store.LoadNext("", seq)
		if err != nil {
			return
		}
		seq = m.Seq
		st.dropIfUninterested(seq)
	}
}

func (st *stream) remove(seq uint64, subject string) bool {
	ok, _ := st.store.Remove(seq)
	if ok {
		if st.perSubj[subject]--; st.perSubj[subject] == 0 {
			delete(st.perSubj, subject)
			delete(st.subjFirst, subject)
		}
	}
	return ok
}

// purge removes messages: all, those on filter, those below seq, or all
// but the newest keep.
func (st *stream) purge(req purgeRequest) (uint64, error) {
	if req.Subject == "" && req.Keep == 0 {
		var n uint64
		var err error
		if req.Seq > 0 {
			n, err = st.store.Compact(req.Seq)
		} else {
			n, err = st.store.Purge()
		}
		st.recount()
		return n, err
	}
	var seqs []uint64
	var subjects []string
	for seq := uint64(0); ; seq++ {
		m, err := st.store.LoadNext(req.Subject, seq)
		if err != nil {
			break
		}
		seq = m.Seq
		if req.Seq > 0 && seq >= req.Seq {
			break
		}
		seqs = append(seqs, seq)
		subjects = append(subjects, m.Subject)
	}
	if req.Keep > 0 {
		if uint64(len(seqs)) <= req.Keep {
			return 0, nil
		}
		seqs = seqs[:uint64(len(seqs))-req.Keep]
	}
	var n uint64
	for i, seq := range seqs {
		if st.remove(seq, subjects[i]) {
			n++
		}
	}
	return n, nil
}

// recount rebuilds the per-subject counts from the store.
func (st *stream) recount() {
	st.perSubj = make(map[string]uint64)
	st.subjFirst = nil
	for seq := uint64(0); ; seq++ {
		m, err := st.store.LoadNext("", seq)
		if err != nil {
			return
		}
		seq = m.Seq
		st.countSubject(m.Subject, seq)
	}
}

// countSubject counts a message stored as seq on subject, noting seq as
// the subject's oldest when it is its only one.
func (st *stream) countSubject(subject string, seq uint64) {
	n := st.perSubj[subject] + 1
	st.perSubj[subject] = n
	if n == 1 && st.cfg.MaxMsgsPerSubject > 0 {
		if st.subjFirst == nil {
			st.subjFirst = make(map[string]uint64)
		}
		st.subjFirst[subject] = seq
	}
}

func (st *stream) info(now time.Time) *StreamInfo {
	s := st.store.State()
	info := &StreamInfo{Config: st.cfg, Created: st.created, TS: now, State: StreamState{
		Msgs: s.Msgs, Bytes: s.Bytes, FirstSeq: s.FirstSeq, FirstTime: s.FirstTime.UTC(),
		LastSeq: s.LastSeq, LastTime: s.LastTime.UTC(), NumDeleted: s.Deleted, NumSubjects: len(st.perSubj),
		Consumers: len(st.consumers),
	}}
	st.linkInfo(info, now)
	return info
}

// headerValue returns the first value of key (in any case) in a NATS/1.0
// header block. storeMsg asks for a dozen keys per publish with headers,
// so it scans in place: it allocates only the value it returns.
func headerValue(hdr []byte, key string) string {
	v, _ := headerLookup(hdr, key)
	return v
}

// headerLookup is headerValue that also says whether key is there.
func headerLookup(hdr []byte, key string) (string, bool) {
	_, rest, _ := bytes.Cut(hdr, crlf) // the status line
	for len(rest) > 0 {
		var line []byte
		line, rest, _ = bytes.Cut(rest, crlf)
		k, v, ok := bytes.Cut(line, colon)
		if ok && equalFoldASCII(bytes.TrimSpace(k), key) {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

var crlf, colon = []byte("\r\n"), []byte(":")

// equalFoldASCII reports whether b equals s ignoring ASCII case (header
// names are ASCII), without converting b to a string.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// normalize fills defaults and validates a config from a client.
func normalize(cfg *StreamConfig) *APIError {
	if strings.ContainsAny(cfg.Name, `/\`) {
		return newErr(errStreamNamePath)
	}
	if len(cfg.Name) > maxNameLen {
		return newErr(errStreamConfig, "err", "stream name is too long, maximum allowed is "+strconv.Itoa(maxNameLen))
	}
	if !validName(cfg.Name) {
		return newErr(errStreamConfig, "err", "stream name is required and can not contain '.', '*', '>', '\\', '/'")
	}
	if e := streamLimits(cfg); e != nil {
		return e
	}
	if cfg.Replicas > 1 {
		return newErr(errReplicas)
	}
	cfg.Replicas = 1
	if e := copyRules(cfg); e != nil {
		return e
	}
	if len(cfg.Subjects) == 0 && !cfg.copies() { // as nats-server: a mirror or sourcing stream may have none
		cfg.Subjects = []string{cfg.Name}
	}
	for _, s := range cfg.Subjects {
		if !router.ValidSubject(s) {
			return newErr(errStreamConfig, "err", "invalid subject: "+s)
		}
	}
	if e := captureRules(cfg); e != nil {
		return e
	}
	if e := ttlRules(cfg); e != nil {
		return e
	}
	if e := counterRules(cfg); e != nil {
		return e
	}
	if e := scheduleRules(cfg); e != nil {
		return e
	}
	if e := subjectTransformRules(cfg); e != nil {
		return e
	}
	if e := republishRules(cfg); e != nil {
		return e
	}
	defaults := []struct {
		v   *string
		def string
		ok  []string
	}{
		{&cfg.Retention, "limits", []string{"limits", "interest", "workqueue"}},
		{&cfg.Discard, "old", []string{"old", "new"}},
		{&cfg.Storage, "file", []string{"file", "memory"}},
	}
	for _, d := range defaults {
		if *d.v == "" {
			*d.v = d.def
		}
		valid := false
		for _, o := range d.ok {
			valid = valid || *d.v == o
		}
		if !valid {
			return newErr(errStreamConfig, "err", "invalid value "+strconv.Quote(*d.v))
		}
	}
	switch cfg.Compression {
	case "", "none", "s2":
	default:
		return newErr(errStreamConfig, "err", "invalid compression "+strconv.Quote(cfg.Compression))
	}
	if cfg.MirrorDirect {
		return refuseStreamField("mirror_direct") // it only means something on a mirror
	}
	if e := persistRules(cfg); e != nil {
		return e
	}
	return placementRules(cfg)
}

// placementRules accepts a placement a single server satisfies: no
// cluster (evnats is not in one) and no preferred server, as nats-server.
func placementRules(cfg *StreamConfig) *APIError {
	p := cfg.Placement
	if p == nil {
		return nil
	}
	if p.Cluster == "" && len(p.Tags) == 0 && p.Preferred == "" {
		cfg.Placement = nil
		return nil
	}
	if p.Preferred != "" {
		return newErr(errStreamConfig, "err", "preferred server not permitted in placement")
	}
	if p.Cluster != "" {
		return newErr(errNoPeers, "err", "no suitable peers for placement: this server is in no cluster, "+strconv.Quote(p.Cluster)+" requested")
	}
	return nil
}

// updateRules checks an update against the stream's config as nats-server
// does, and applies what sealing implies: a sealed stream takes no more
// messages, deletes, purges or expiry, and stays sealed.
func updateRules(old StreamConfig, cfg *StreamConfig) *APIError {
	bad := func(msg string) *APIError {
		return newErr(errStreamConfig, "err", "stream configuration update can not "+msg)
	}
	if cfg.FirstSeq == 0 {
		cfg.FirstSeq = old.FirstSeq // not restated: unchanged
	}
	switch {
	case cfg.Storage != old.Storage:
		return bad("change storage type")
	case old.Sealed && !cfg.Sealed:
		return bad("unseal a sealed stream")
	case old.DenyDelete && !cfg.DenyDelete:
		return bad("cancel deny message deletes")
	case old.DenyPurge && !cfg.DenyPurge:
		return bad("cancel deny purge")
	case cfg.FirstSeq != old.FirstSeq:
		return bad("change first sequence")
	}
	if e := ttlUpdateRules(old, cfg); e != nil {
		return e
	}
	if e := counterUpdateRules(old, cfg); e != nil {
		return e
	}
	if e := scheduleUpdateRules(old, cfg); e != nil {
		return e
	}
	if e := persistUpdateRules(old, cfg); e != nil {
		return e
	}
	if cfg.Sealed {
		cfg.MaxAge = 0
		cfg.Discard = "new"
		cfg.DenyDelete, cfg.DenyPurge = true, true
		cfg.AllowRollup = false
	}
	return nil
}

var errDeleteDenied = errors.New("message delete not permitted")

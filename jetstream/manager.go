package jetstream

// Concurrency: whoever holds own owns every stream, consumer and store:
// the Manager goroutine (run) while it handles a batch, a tick or a timer,
// Start while it recovers, or a publisher's goroutine that handles a
// request in place (handleInPlace: the Manager idle, nothing queued).
// enqueue, called by internal subscription handlers on publishers'
// goroutines and by held push consumers' resume functions (on whatever
// goroutine opens the server's flow gate, maybe under a connection's
// lock), and Stop take mu, which guards queue and stopped (a leaf; taken
// under own, never the other way). Store Writer callbacks run on the
// Writer goroutine and only post their completion to the queue
// (enqueueDone): a stream's, a fast batch's and a consumer's confirmed
// double ack; the Manager encodes and publishes the replies.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/router"
)

// Host is what the Manager needs from the server: internal subscriptions
// and publishing from any goroutine.
type Host interface {
	// Subscribe registers fn for subject; fn runs on publishers' goroutines
	// and must copy what it keeps. It returns the unsubscribe function.
	Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func()
	// Publish sends a message; safe for concurrent use.
	Publish(subject, reply string, hdr, data []byte)
	// Deliver sends a message to the subscribers of to, showing it under
	// subject (a consumer delivers a stream message on a request's inbox).
	// It must copy what it keeps: reply (the ack subject) is reused by
	// the consumer's next delivery.
	// With resume set (a push consumer) it reports false when a
	// destination is over its flow-control high-water mark: the message
	// was delivered, the caller should deliver no more to `to` until
	// resume runs. resume is called once per false, from any goroutine,
	// possibly under the server's locks, so it must only queue work.
	Deliver(to, subject, reply string, hdr, data []byte, resume func()) bool
	// Interest reports whether anyone subscribes to subject: a push
	// consumer delivers only then, as nats-server's (with ack none a
	// message delivered to nobody would be lost). Called by the Manager
	// goroutine only, like Deliver.
	Interest(subject string) bool
}

// ClientHost is a Host that also says who sent an API request, for the
// audit advisory (nats-server's ClientInfo). The Manager subscribes the
// API through it when the host has it. fn's client is nil when unknown
// and for pulls and direct gets (Unaudited); fn may keep it.
type ClientHost interface {
	SubscribeAPI(subject string, fn func(subject, reply string, hdr, data []byte, client *ClientInfo)) func()
}

// Unaudited reports whether an API subject is a pull request (MSG.NEXT)
// or a direct get: frequent, quick, and (as nats-server's) without an
// audit advisory.
func Unaudited(subject string) bool {
	return strings.HasPrefix(subject, pullPrefix) || strings.HasPrefix(subject, directPrefix)
}

// Config configures a Manager.
type Config struct {
	StoreDir   string           // root for file streams and stream configs
	Sync       store.SyncPolicy // file store sync policy
	MaxMemory  int64            // reported account limits; -1 unlimited
	MaxStore   int64
	MaxStreams int
	// MaxConsumers bounds the consumers of each stream (nats-server's
	// account max_consumers); 0 or -1: unlimited.
	MaxConsumers int
	FS           store.FS // default store.OSFS
	ServerName   string   // shown as every stream's leader in stream info
	Domain       string   // the server's JetStream domain, shown in account info and pub acks ("": none)
	// Account is the account whose streams this Manager serves ("": the
	// global account $G); its streams live under
	// <StoreDir>/jetstream/<Account>/. The server checks the name (no
	// path separator, no dot).
	Account string
	// Errorf logs a server-side error (a handler's panic, a skipped
	// directory on recovery); nil discards.
	Errorf func(format string, args ...any)
}

// Manager runs JetStream: it owns every stream and serves the $JS.API on one
// goroutine. Requests arrive through a queue filled by internal
// subscriptions; replies leave through Host.Publish. File writes go to the
// shared store.Writer goroutine, whose completions come back to the queue
// (enqueueDone), where the Manager publishes the acks they release.
type Manager struct {
	cfg    Config
	host   Host
	writer *store.Writer

	// own is held by whoever runs the Manager's state below (see the
	// top of this file): run, Start, or handleInPlace (TryLock, never
	// waits).
	own sync.Mutex

	// mu guards queue and stopped; wake has capacity 1.
	mu      sync.Mutex
	queue   []request
	stopped bool
	wake    chan struct{}
	done    chan struct{}

	// Owned by whoever holds own.
	streams       map[string]*stream
	apiTotal      uint64
	apiErrors     uint64
	unsubAPI      func()
	streamsDir    string
	trashDir      string   // deleted streams and consumers are renamed here, then removed
	trashSlot     uint64   // numbers the names in trashDir
	recovering    bool     // recover is running: existing directories are streams, not leftovers
	storeRoots    []string // the store directory as errors may spell it; cut from client-visible text
	nextSubjectID int
	linksBehind   bool          // a mirror or source has more to copy (mirror.go: catchUp)
	subjects      *subjectIndex // every stream's subjects, as subscribed (subscribe, deleteStream)

	// Consumer timers (timers.go): armed deadlines, earliest first; the
	// consumers whose steps ran since they were last armed; the one timer
	// (nil outside run, as in the fake-clock tests) and what it is set for.
	wakes   wakeHeap
	touched []*consumer
	timer   *time.Timer
	timerAt time.Time

	// Streams' timed work (timers.go: armStreams): when tickStreams is
	// next due (zero: nothing waits), the streams stepped since their
	// deadline was last computed, and whether links changed since.
	streamsAt      time.Time
	touchedStreams []*stream
	linksChanged   bool

	// dirtyLogs are the consumer logs with events of the current step,
	// written when it ends (consumer_log.go: flushLogs).
	dirtyLogs []*consumerLog
}

// request is one message for the manager: an API call or a publish to a stream.
type request struct {
	st     *stream     // set for a publish to a stream
	ack    *consumer   // set for an ack to a consumer
	resume *consumer   // set when a held push consumer's destination drained
	run    func()      // set for a monitoring question (usage.go), run as is
	client *ClientInfo // who sent an API request, when the host says (audit advisory)
	// durable or fast is set for a store's completion of message seq
	// (err: its write failed): a stream's (stream_core.go: completed) or
	// a fast batch's (fastDone, with reply).
	durable *stream
	fast    *durableTail
	seq     uint64
	err     error
	confirm string // set for a double ack's reply, once its log record is durable
	subject string
	reply   string
	hdr     []byte
	data    []byte
}

// Start recovers stored streams and starts serving.
func Start(cfg Config, host Host) (*Manager, error) {
	if cfg.FS == nil {
		cfg.FS = store.OSFS{}
	}
	if cfg.Account == "" {
		cfg.Account = "$G"
	}
	if !validName(cfg.Account) {
		return nil, fmt.Errorf("jetstream: invalid account name %q", cfg.Account)
	}
	if cfg.MaxStreams == 0 {
		cfg.MaxStreams = -1
	}
	m := &Manager{cfg: cfg, host: host, writer: store.NewWriter(cfg.FS, cfg.Sync),
		wake: make(chan struct{}, 1), done: make(chan struct{}), streams: make(map[string]*stream),
		streamsDir: filepath.Join(cfg.StoreDir, "jetstream", cfg.Account, "streams"), trashDir: filepath.Join(cfg.StoreDir, "jetstream", cfg.Account, "trash"),
		storeRoots: storeRootsOf(cfg.StoreDir), subjects: newSubjectIndex()}
	m.own.Lock() // recovery owns the state; run takes over (publishes queue meanwhile)
	if err := m.recover(); err != nil {
		m.own.Unlock()
		m.writer.Close()
		return nil, err
	}
	api := func(subject, reply string, hdr, data []byte, client *ClientInfo) {
		r := request{subject: subject, reply: reply, hdr: clone(hdr), data: clone(data), client: client}
		if Unaudited(subject) && m.handleInPlace(&r) {
			return // a pull or direct get: served at once when the Manager is idle
		}
		m.enqueue(r)
	}
	if ch, ok := host.(ClientHost); ok {
		m.unsubAPI = ch.SubscribeAPI("$JS.API.>", api)
	} else {
		m.unsubAPI = host.Subscribe("$JS.API.>", func(subject, reply string, hdr, data []byte) { api(subject, reply, hdr, data, nil) })
	}
	go m.run()
	return m, nil
}

// Stop finishes queued work, flushes the stores and stops.
func (m *Manager) Stop() {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.stopped = true
	m.mu.Unlock()
	m.signal()
	<-m.done
}

func (m *Manager) enqueue(r request) {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return
	}
	m.queue = append(m.queue, r)
	m.mu.Unlock()
	m.signal()
}

// inPlace says whether a stream publish, a pull request, a direct get or
// an ack may be handled on its publisher's goroutine when the Manager is
// idle (handleInPlace; a publish only to a memory stream); tests turn it
// off to compare.
var inPlace atomic.Bool

func init() { inPlace.Store(true) }

// pullPrefix and directPrefix start the subjects of a pull request
// (MSG.NEXT) and a direct get.
const (
	pullPrefix   = "$JS.API.CONSUMER.MSG.NEXT."
	directPrefix = "$JS.API.DIRECT.GET."
)

// handleInPlace handles r on the publisher's goroutine and reports true,
// when the Manager is idle and nothing is queued (so nothing queued
// earlier is passed). It is for what is frequent and quick: a publish to
// a memory stream (its PubAck then leaves with no hop to the Manager
// goroutine and back), a pull request, a direct get, an ack to a consumer
// that writes no log. It never waits: when the Manager is
// busy it reports false and the caller queues r. What r does on the
// Manager (store, pump consumers, feed mirrors, deliver) runs here the
// same, under own.
func (m *Manager) handleInPlace(r *request) bool {
	if !inPlace.Load() || !m.own.TryLock() {
		return false
	}
	defer m.own.Unlock()
	if r.ack != nil && r.ack.log != nil {
		// A durable consumer of a file stream logs each ack to the store
		// Writer: queued, its acks reach the Writer in batches (in place,
		// one Writer wakeup each cost consume 1.3x main's CPU per message).
		return false
	}
	m.mu.Lock()
	idle := len(m.queue) == 0 && !m.stopped
	m.mu.Unlock()
	if !idle {
		return false
	}
	m.handle(r)
	m.catchUp()
	m.armTouched(time.Now())
	return true
}

// enqueueDone queues a store's completion, from the Writer goroutine. It
// is queued after Stop too: run serves what the Writer completes while it
// closes.
func (m *Manager) enqueueDone(r request) {
	m.mu.Lock()
	m.queue = append(m.queue, r)
	m.mu.Unlock()
	m.signal()
}

func (m *Manager) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) run() {
	defer close(m.done)
	m.timer = time.NewTimer(time.Hour)
	m.timer.Stop()
	defer m.timer.Stop()
	m.armTouched(time.Now()) // recovered streams and consumers
	m.own.Unlock()           // held since Start
	var batch []request
	for {
		select {
		case <-m.wake:
		case <-m.timer.C:
			// Not the channel's time: that is when the timer was due, which
			// may be long past when run gets to it (a busy batch, a loaded
			// CPU). Due work is due at the time it is done; a tick at the old
			// time left links no budget (tickLinks: linkSlice from now).
			m.own.Lock()
			m.fireDueRecovering(time.Now())
			m.own.Unlock()
			continue
		}
		m.own.Lock() // before taking the queue: nothing may pass what is in it
		m.mu.Lock()
		batch, m.queue = m.queue, batch[:0]
		stopped := m.stopped
		m.mu.Unlock()
		for i := range batch {
			m.handle(&batch[i])
		}
		clear(batch)
		m.catchUp()
		m.armTouched(time.Now())
		if !stopped {
			m.own.Unlock()
			continue
		}
		{ // stopped: own stays held, no publish is handled in place again
			m.unsubAPI()
			for _, st := range m.streams {
				for _, u := range st.unsub {
					u()
				}
				m.stopLinks(st)
			}
			m.writer.Close()
			m.mu.Lock()
			batch, m.queue = m.queue, nil
			m.mu.Unlock()
			for i := range batch { // what the Writer completed while closing
				if batch[i].durable != nil || batch[i].fast != nil || batch[i].confirm != "" {
					m.handle(&batch[i])
				}
			}
			for _, st := range m.streams {
				st.store.Close()
			}
			return
		}
	}
}

// streamTick (a time.Duration) is how often streams' timed work runs
// while it cannot wait for a deadline: a link whose origin is missing or
// whose copy failed retries this often, and so does work left overdue
// (armStreams). Everything else waits for its deadline. Tests lengthen it.
var streamTick atomic.Value

func init() { streamTick.Store(50 * time.Millisecond) }

// streamTicks counts tickStreams runs in this process (tests check that
// an idle server does not wake).
var streamTicks atomic.Uint64

// linkRefresh is how often links are looked at when nothing else is due,
// so that a link's lag and "active" in stream info stay current (as
// nats-server's sources report within their health check interval).
const linkRefresh = time.Second

// tick is the time input for everything: streams' timed work and the
// consumers whose deadlines are due (the fake-clock tests' step).
func (m *Manager) tick(now time.Time) {
	m.tickStreams(now)
	m.fireDueRecovering(now)
}

// tickStreams does the streams' timed work and arms the next: the
// earliest deadline the streams' steps return (stream_core.go:
// nextDeadline) and the links' next look.
func (m *Manager) tickStreams(now time.Time) {
	streamTicks.Add(1)
	m.streamsAt = now.Add(streamTick.Load().(time.Duration)) // if a step panics below
	defer m.recoverTick()
	if m.linksBehind = m.tickLinks(now); m.linksBehind {
		m.signal()
	}
	var next time.Time
	for _, st := range m.streams {
		st.tick(now)
		next = earliest(next, m.afterStore(st, now)) // delete markers (consumers waiting for them), schedules' messages, abandoned batches
		st.touched = false                           // its deadline was just computed
	}
	// A stream stepped after its own tick in this round (a source's copy of
	// a later stream's schedule firing: feed) is touched again and stays
	// for armStreams; the others' deadlines are in next.
	keep := m.touchedStreams[:0]
	for _, st := range m.touchedStreams {
		if st.touched {
			st.touched = false // once in keep, however often it was touched
			keep = append(keep, st)
		}
	}
	for _, st := range keep {
		st.touched = true
	}
	clear(m.touchedStreams[len(keep):])
	m.touchedStreams = keep
	next = earliest(next, m.linksDue(now))
	if !next.IsZero() && !next.After(now) {
		next = now.Add(streamTick.Load().(time.Duration)) // still overdue: work the steps left for later
	}
	m.streamsAt = next
}

// fireDueRecovering is fireDue behind the tick's panic guard.
func (m *Manager) fireDueRecovering(now time.Time) {
	defer m.resetTimer(now) // after a panic too (deferred calls run last first)
	defer m.recoverTick()
	m.fireDue(now)
}

func (m *Manager) logf(format string, args ...any) {
	if m.cfg.Errorf != nil {
		m.cfg.Errorf(format, args...)
	}
}

func (m *Manager) handle(r *request) {
	defer m.recoverRequest(r)
	if r.st != nil {
		m.publish(r, time.Now())
		return
	}
	if r.durable != nil {
		m.completed(r)
		return
	}
	if r.fast != nil {
		m.fastDone(r.reply, r.fast, r.seq, r.err)
		return
	}
	if r.confirm != "" {
		m.host.Publish(r.confirm, "", nil, nil)
		return
	}
	if r.ack != nil {
		m.handleAck(r)
		return
	}
	if r.run != nil {
		r.run()
		return
	}
	if c := r.resume; c != nil {
		if c.st.consumers[c.name] == c && m.streams[c.st.cfg.Name] == c.st {
			c.held = false
			m.pump(c, time.Now())
		}
		return
	}
	if h := testHook.Load(); h != nil {
		(*h)(r.subject)
	}
	resp := m.api(r)
	if resp != nil {
		m.apiTotal++ // as nats-server: answered requests, counted after the answer (pulls and direct gets are not)
	}
	if resp != nil && r.reply != "" {
		m.host.Publish(r.reply, "", nil, resp)
	}
	if resp != nil {
		m.adviseAudit(r, resp)
	}
}

// publish stores a message published on a stream subject at now and acks
// it: the stream's publish step, then its effects (afterStore).
func (m *Manager) publish(r *request, now time.Time) {
	st := r.st
	if m.streams[st.cfg.Name] != st {
		return // the stream was deleted after this message was queued
	}
	r.subject = st.ingestSubject(r.subject)
	reply := r.reply
	if st.cfg.NoAck {
		reply = ""
	}
	name := st.cfg.Name
	if m.overLimit(st, len(r.subject)+len(r.hdr)+len(r.data)) {
		if reply != "" {
			m.host.Publish(reply, "", nil, mustJSON(&PubAck{Stream: name, Error: newErr(errInsufficient)}))
		}
		return
	}
	if strings.HasSuffix(r.reply, fastSuffix) { // before atomic, as nats-server
		m.publishFast(r)
		return
	}
	if id := headerValue(r.hdr, hdrBatchID); id != "" {
		m.publishAtomic(r, reply, id, now)
		return
	}
	st.publish(r.subject, reply, r.hdr, r.data, now)
	m.afterStore(st, now)
}

// afterStore performs what st's steps recorded (stream_core.go): the
// BATCH_ABANDONED advisories, the PubAcks to send now, then what the messages
// they stored make possible (stored), or, when they stored none, the
// republishes they queued. It returns the deadline the steps asked to be
// woken at, which only the time input computes (zero: none; after other
// steps armStreams computes it for the streams touchStream marks).
func (m *Manager) afterStore(st *stream, now time.Time) (wake time.Time) {
	m.touchStream(st)
	fx := st.ready()
	m.sendFast(fx.fast)
	for _, a := range fx.abandoned {
		m.adviseBatchAbandoned(st, a.id, a.reason)
	}
	for i := range fx.acks {
		a := &fx.acks[i]
		if a.empty {
			m.host.Publish(a.to, "", nil, nil)
			continue
		}
		if a.ack.Error == nil {
			a.ack.Domain = st.domain // a duplicate's and an atomic batch's too, as nats-server
		}
		m.public(a.ack.Error)
		m.host.Publish(a.to, "", nil, pubAckJSON(&a.ack))
	}
	clear(fx.acks)
	if fx.last != 0 {
		m.stored(st, fx.first, fx.last, now)
	} else {
		m.flushOutbox(st)
	}
	return fx.wake
}

// stored serves what the messages first..last just stored in st make
// possible: waiting pulls and push consumers, the streams that copy st,
// then interest retention (after the copies: nobody to keep them for).
func (m *Manager) stored(st *stream, first, last uint64, now time.Time) {
	m.flushOutbox(st)
	for _, c := range st.consumers {
		if len(c.waiting) > 0 {
			m.pump(c, now)
		}
	}
	m.feed(st, now) // before interest retention drops it
	if st.cfg.Retention == "interest" {
		for seq := first; seq <= last && seq != 0; seq++ {
			st.dropIfUninterested(seq)
		}
	}
}

// overLimit reports whether n more bytes in st would exceed the account's
// memory or file storage limit (max_memory_store, max_file_store).
func (m *Manager) overLimit(st *stream, n int) bool {
	limit := m.cfg.MaxStore
	if st.cfg.Storage == "memory" {
		limit = m.cfg.MaxMemory
	}
	if limit <= 0 {
		return false
	}
	used := int64(n)
	for _, o := range m.streams {
		if o.cfg.Storage == st.cfg.Storage {
			used += int64(o.store.State().Bytes)
		}
	}
	return used > limit
}

// handleAck applies an ack sent to $JS.ACK.<stream>.<consumer>.<delivered>.
// <sseq>.<dseq>.<ts>.<pending>, and answers a double ack once recorded.
func (m *Manager) handleAck(r *request) {
	c := r.ack
	if c.st.consumers[c.name] != c {
		return
	}
	t, ok := parseAckSubject(r.subject, c)
	sseq := t.sseq
	if !ok {
		return // not an ack subject this consumer hands out: ignored, unlogged
	}
	if body := bytes.TrimSpace(r.data); !c.push() && r.reply != "" && bytes.HasPrefix(body, []byte("+NXT")) {
		// +NXT acks and asks for more: its reply subject is a pull
		// request's. The ack's pump serves the request queued first.
		now := time.Now()
		c.request(r.reply, body[len("+NXT"):], now)
		m.ack(c, sseq, nil, now, nil)
		return
	}
	var confirmed func()
	if reply := r.reply; reply != "" {
		// After the ack is on disk: from the Writer's completion, posted
		// back to the queue, so the Writer routes nothing.
		confirmed = func() { m.enqueueDone(request{confirm: reply}) }
	}
	m.ack(c, sseq, r.data, time.Now(), confirmed)
	if bytes.HasPrefix(bytes.TrimSpace(r.data), []byte("+TERM")) {
		m.adviseTerm(c, t, r.data)
	}
}

// addStream creates a stream from a normalized config, opening its store.
func (m *Manager) addStream(cfg StreamConfig, created time.Time) (*stream, error) {
	st := &stream{cfg: cfg, created: created, dedupe: make(map[string]dedupeEntry), perSubj: make(map[string]uint64),
		consumers: make(map[string]*consumer)}
	dir, err := storePath(m.streamsDir, cfg.Name)
	if err != nil {
		return nil, err
	}
	if !m.recovering {
		// A directory without a stream is what an unacknowledged create or
		// an interrupted delete left: its files must not join this stream.
		if err := m.removeDurable(dir); err != nil {
			return nil, err
		}
	}
	if cfg.Storage == "memory" {
		st.store = store.NewMemStore()
	} else {
		st.dir = dir
		if err := store.MkdirDurable(m.cfg.FS, filepath.Join(dir, "msgs"), m.streamsDir); err != nil {
			return nil, err
		}
		fs, err := store.OpenFileStore(store.FileStoreConfig{FS: m.cfg.FS, Dir: filepath.Join(st.dir, "msgs"), Writer: m.writer,
			Compress: cfg.Compression == "s2", NoSyncAlways: st.asyncAck()})
		if err != nil {
			return nil, err
		}
		st.store = fs
	}
	st.domain = m.cfg.Domain
	if st.dir != "" {
		st.durable = m.durableFor(st)
		st.fastDurable = m.fastDurableFor()
	}
	st.recount()
	st.indexTTLs()
	st.compileStreamTransforms()
	st.indexSchedules(time.Now())
	m.streams[cfg.Name] = st
	m.subscribe(st)
	m.setLinks(st)
	return st, nil
}

// subscribe (re)subscribes a stream to its subjects and indexes them for
// the overlap check.
func (m *Manager) subscribe(st *stream) {
	m.subjects.set(st.cfg.Name, st.cfg.Subjects)
	for _, u := range st.unsub {
		u()
	}
	st.unsub = st.unsub[:0]
	memory := st.cfg.Storage == "memory"
	for _, subj := range st.cfg.Subjects {
		st.unsub = append(st.unsub, m.host.Subscribe(subj, func(subject, reply string, hdr, data []byte) {
			r := request{st: st, subject: subject, reply: reply, hdr: clone(hdr), data: clone(data)}
			// A file stream's publishes queue: the Manager hands them to the
			// Writer in batches, which pipelined publishers need (measured:
			// in place, BenchmarkAsyncPublish took up to twice as long).
			if !memory || !m.handleInPlace(&r) {
				m.enqueue(r)
			}
		}))
	}
}

// streamMeta is a stream's meta.json.
type streamMeta struct {
	Config  StreamConfig `json:"config"`
	Created time.Time    `json:"created"`
}

// saveMeta writes a stream's config so it is recreated on restart. When it
// returns nil the config is durable (see store.WriteFileDurable), so a
// create or update may be acknowledged: meta.json is the commit point.
func (m *Manager) saveMeta(st *stream) error {
	dir, err := storePath(m.streamsDir, st.cfg.Name)
	if err != nil {
		return err
	}
	if _, err := m.cfg.FS.ReadDir(dir); err != nil { // a memory stream's first config
		if err := store.MkdirDurable(m.cfg.FS, dir, m.streamsDir); err != nil {
			return err
		}
	}
	b, _ := json.MarshalIndent(streamMeta{st.cfg, st.created}, "", "  ")
	return store.WriteFileDurable(m.cfg.FS, dir, "meta.json", b)
}

// removeDurable deletes a stream's or consumer's directory in one durable
// step (see store.RemoveAllDurable): a crash leaves it whole or gone.
func (m *Manager) removeDurable(dir string) error {
	m.trashSlot++
	slot := fmt.Sprintf("%d-%d", time.Now().UnixNano(), m.trashSlot) // never a client's name
	return store.RemoveAllDurable(m.cfg.FS, dir, m.trashDir, slot)
}

// recover recreates the streams whose configs are on disk. Any state a
// crash can leave is accepted: the trash is emptied, a half-written
// meta.json.tmp is removed, a directory without meta.json (a create that was
// never acknowledged) is skipped and cleared when its name is created again,
// a stream without message files starts empty.
func (m *Manager) recover() error {
	fs := m.cfg.FS
	if err := fs.RemoveAll(m.trashDir); err != nil {
		m.logf("jetstream: emptying %s: %v", m.trashDir, err)
	}
	if err := store.MkdirDurable(fs, m.streamsDir, m.cfg.StoreDir); err != nil {
		return err
	}
	// The store directory's own entry, for a store created just now; its
	// parent is not ours and may not be readable, so this is best effort.
	_ = fs.SyncDir(filepath.Dir(filepath.Clean(m.cfg.StoreDir)))
	if err := store.MkdirDurable(fs, m.trashDir, m.cfg.StoreDir); err != nil {
		return err
	}
	names, err := fs.ReadDir(m.streamsDir)
	if err != nil {
		return err
	}
	m.recovering = true
	defer func() { m.recovering = false }()
	for _, name := range names {
		if !validName(name) {
			m.logf("jetstream: skipping %s: not a stream name", name)
			continue
		}
		dir := filepath.Join(m.streamsDir, name)
		_ = fs.Remove(filepath.Join(dir, "meta.json"+store.TempSuffix)) // never renamed: not acknowledged
		b, err := fs.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			continue // not a stream directory, or a create that did not finish
		}
		var meta streamMeta
		if err := json.Unmarshal(b, &meta); err != nil {
			return fmt.Errorf("jetstream: stream %s: %w", name, err)
		}
		if meta.Config.Name != name {
			// Not a directory this store made for that stream: a config
			// written there by other means must not become a stream.
			m.logf("jetstream: skipping %s: its meta.json names stream %q", name, meta.Config.Name)
			continue
		}
		st, err := m.addStream(meta.Config, meta.Created)
		if err != nil {
			return fmt.Errorf("jetstream: stream %s: %w", name, err)
		}
		if st.dir != "" {
			if err := m.recoverConsumers(st, time.Now()); err != nil {
				return fmt.Errorf("jetstream: stream %s consumers: %w", name, err)
			}
		}
	}
	return nil
}

// deleteStream removes a stream and its files. The directory goes in one
// durable step before it returns, consumers' included, so a stream whose
// delete was acknowledged never comes back, and one whose delete failed
// comes back whole.
func (m *Manager) deleteStream(st *stream) error {
	for _, u := range st.unsub {
		u()
	}
	m.stopLinks(st)
	delete(m.streams, st.cfg.Name) // first: consumers' files now go with the stream's (closeLog)
	m.subjects.set(st.cfg.Name, nil)
	for _, c := range st.consumers {
		m.deleteConsumer(c)
	}
	m.rewire()
	st.store.Close()
	dir, err := storePath(m.streamsDir, st.cfg.Name)
	if err != nil {
		return err
	}
	m.writer.Forget(dir) // no queued write or open handle may outlive the removal
	return m.removeDurable(dir)
}

func (m *Manager) sortedStreams(filter string) []*stream {
	var out []*stream
	for _, st := range m.streams {
		if filter != "" && !collidesAny(filter, st.cfg.Subjects) {
			continue
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.Name < out[j].cfg.Name })
	return out
}

func collidesAny(subject string, list []string) bool {
	for _, s := range list {
		if router.SubjectsCollide(subject, s) {
			return true
		}
	}
	return false
}

// overlaps reports whether cfg's subjects overlap another stream's: one
// walk of the subject index per subject (subjindex.go).
func (m *Manager) overlaps(cfg *StreamConfig) bool {
	return m.subjects.anyCollides(cfg.Subjects, cfg.Name)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

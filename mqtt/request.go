package mqtt

// Concurrency: requests is part of the bridge; mu guards pending. Its
// internal subscription's handler runs on any replier's goroutine with no
// lock held; sweep runs on housekeeping. A leaf lock.

import (
	"encoding/base64"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nuid"
)

// An MQTT 5 request (a PUBLISH with a response topic and correlation data)
// reaches NATS with a reply subject under requestPrefix. A reply published
// there, by a nats.go service (msg.Respond) or an MQTT 5 responder (which
// sees the reply subject as its response topic), is forwarded to the
// request's response topic with the request's correlation data, which
// NATS replies do not carry.
const (
	requestPrefix = "$MQTT.rr."
	// requestTTL is how long a request waits for replies (seconds).
	requestTTL = 120
	// maxRequests bounds the requests waiting at once; past it a request
	// gets the response topic itself as reply subject, without correlation.
	maxRequests = 100_000
	// maxRequestBytes bounds the response topics and correlation data
	// they keep, together (a response topic may be 64 KiB).
	maxRequestBytes = 16 << 20
	// maxClientRequests and maxClientRequestBytes bound one client id's
	// share of them, so that one client cannot fill the table and leave
	// every other requester without correlation data: past either, its
	// request is refused (PUBACK/PUBREC 0x97 Quota exceeded; a QoS 0 one
	// is dropped).
	maxClientRequests     = 10_000
	maxClientRequestBytes = 1 << 20
	// maxEvictions bounds the entries one request evicts to fit (see
	// requests.evict).
	maxEvictions = 8
)

// pendingRequest is where replies to one request go.
type pendingRequest struct {
	subject string // the response topic's subject
	corr    []byte
	expires int64  // unix seconds
	client  string // the requester's client id
}

// clientRequests is one client id's share of the pending requests: how
// many and their bytes, and their tokens, oldest first from head (every
// entry waits requestTTL, so the oldest ends first).
type clientRequests struct {
	n, bytes int
	tokens   []string
	head     int
}

// requests are the MQTT 5 requests waiting for replies.
//
// Locking rule: mu guards pending, bytes and byClient.
type requests struct {
	b        *bridge
	sp       *space    // the account its requests and replies are in
	once     sync.Once // subscribes requestPrefix on the first request
	sub      *loop.Sub // that subscription, set once (by once)
	mu       sync.Mutex
	pending  map[string]*pendingRequest
	bytes    int                        // response topics and correlation data held in pending
	byClient map[string]*clientRequests // each client id's share of pending
	// noVictim is set when a full table had no holder to evict from (see
	// evict), so that full requests do not rescan byClient until the next
	// sweep.
	noVictim bool
	// refused counts requests refused past a client's share; logged is
	// when that was last logged (unix nanoseconds): a line a second.
	refused, logged atomic.Int64
}

func (r *requests) init(b *bridge, sp *space) {
	r.b, r.sp = b, sp
	r.pending = make(map[string]*pendingRequest)
	r.byClient = make(map[string]*clientRequests)
}

// replySubject returns the reply subject of a request of client whose
// response topic maps to subject: one of requestPrefix that restores corr
// on the way back, or subject itself when there is no correlation data to
// restore (or the table is full). It reports false, keeping nothing, when
// client holds its share of the table already.
func (r *requests) replySubject(client, subject string, corr []byte) (string, bool) {
	if len(corr) == 0 {
		return subject, true
	}
	r.once.Do(func() {
		r.sub = r.b.srv.NewInternalSub(requestPrefix+"*", nil, 0, r.reply)
		r.sp.acc.ReplaceSubs(nil, []*loop.Sub{r.sub})
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	size := len(subject) + len(corr)
	cr := r.byClient[client]
	if cr != nil && (cr.n >= maxClientRequests || cr.bytes+size > maxClientRequestBytes) {
		r.refuse(client, cr)
		return "", false
	}
	// A full table makes room from the client holding the most entries,
	// when that is more than this one would hold: ten client ids at their
	// share fill the table, and would otherwise leave every other
	// requester without correlation data for two minutes.
	for evicted := 0; len(r.pending) >= maxRequests || r.bytes+size > maxRequestBytes; evicted++ {
		if evicted == maxEvictions || !r.evict(cr) {
			return subject, true
		}
	}
	if cr == nil {
		cr = &clientRequests{}
		r.byClient[client] = cr
	}
	token := nuid.Next()
	r.pending[token] = &pendingRequest{subject: subject, corr: append([]byte(nil), corr...), expires: unixNow() + requestTTL, client: client}
	r.bytes += size
	cr.n++
	cr.bytes += size
	cr.tokens = append(cr.tokens, token)
	return requestPrefix + token, true
}

// evict forgets the oldest entry of the client holding the most, if that
// client holds at least two more than requester (nil: a client with
// none); it reports false when there is none. Caller holds mu.
func (r *requests) evict(requester *clientRequests) bool {
	if r.noVictim {
		return false
	}
	have := 0
	if requester != nil {
		have = requester.n
	}
	var victim *clientRequests
	var victimID string
	for id, cr := range r.byClient {
		if victim == nil || cr.n > victim.n {
			victim, victimID = cr, id
		}
	}
	if victim == nil || victim.n <= have+1 {
		r.noVictim = true // until the next sweep
		return false
	}
	r.forgetOldest(victimID, victim)
	return true
}

// forgetOldest removes cr's oldest entry. Caller holds mu.
func (r *requests) forgetOldest(client string, cr *clientRequests) {
	token := cr.tokens[cr.head]
	cr.tokens[cr.head] = ""
	cr.head++
	if p := r.pending[token]; p != nil {
		delete(r.pending, token)
		size := len(p.subject) + len(p.corr)
		r.bytes -= size
		cr.bytes -= size
	}
	if cr.n--; cr.n == 0 {
		delete(r.byClient, client)
		return
	}
	if cr.head > len(cr.tokens)/2 { // let go of the popped half
		cr.tokens = append(cr.tokens[:0:0], cr.tokens[cr.head:]...)
		cr.head = 0
	}
}

// refuse counts and logs (a line a second) a request refused because
// client holds its share. Caller holds mu.
func (r *requests) refuse(client string, cr *clientRequests) {
	n := r.refused.Add(1)
	now := time.Now().UnixNano()
	last := r.logged.Load()
	if now-last < int64(time.Second) || !r.logged.CompareAndSwap(last, now) {
		return
	}
	r.b.srv.Noticef("MQTT client %q has %d requests (%d bytes) waiting for replies, its limit: refusing more (0x97 Quota exceeded; %d so far)",
		client, cr.n, cr.bytes, n)
}

// reply forwards a reply to its request's response topic, with the
// correlation data in Nmqtt-Corr and the reply's other headers.
func (r *requests) reply(subject, _ []byte, hdrLen int, msg []byte) {
	token, _ := strings.CutPrefix(string(subject), requestPrefix)
	r.mu.Lock()
	p := r.pending[token]
	r.mu.Unlock()
	if p == nil {
		return
	}
	var hdr, payload []byte = nil, msg
	if hdrLen > 0 {
		hdr, payload = msg[:hdrLen], msg[hdrLen:]
	}
	out := append([]byte(mqttHeaderPrefix), '0'+originQoS(msg, hdrLen), '\r', '\n')
	out = append(append(out, hdrCorr...), ':')
	out = base64.StdEncoding.AppendEncode(out, p.corr)
	out = append(out, '\r', '\n')
	eachHeader(hdr, func(k, v []byte) {
		if string(k) == "Nmqtt-Pub" || string(k) == hdrCorr {
			return
		}
		out = append(append(append(append(out, k...), ':'), v...), '\r', '\n')
	})
	out = append(out, '\r', '\n')
	r.b.srv.PublishInternalIn(r.sp.acc, p.subject, "", out, payload)
}

// sweep forgets requests past their time: each client's oldest first.
func (r *requests) sweep(now int64) {
	r.mu.Lock()
	r.noVictim = false
	for client, cr := range r.byClient {
		for cr.n > 0 {
			p := r.pending[cr.tokens[cr.head]]
			if p != nil && now < p.expires {
				break
			}
			r.forgetOldest(client, cr)
		}
	}
	r.mu.Unlock()
}

package mqtt

// Concurrency: requests is part of the bridge; mu guards pending. Its
// internal subscription's handler runs on any replier's goroutine with no
// lock held; sweep runs on housekeeping. A leaf lock.

import (
	"encoding/base64"
	"strings"
	"sync"

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
)

// pendingRequest is where replies to one request go.
type pendingRequest struct {
	subject string // the response topic's subject
	corr    []byte
	expires int64 // unix seconds
}

// requests are the MQTT 5 requests waiting for replies.
//
// Locking rule: mu guards pending and bytes.
type requests struct {
	b       *bridge
	once    sync.Once // subscribes requestPrefix on the first request
	sub     *loop.Sub // that subscription, set once (by once)
	mu      sync.Mutex
	pending map[string]*pendingRequest
	bytes   int // response topics and correlation data held in pending
}

func (r *requests) init(b *bridge) {
	r.b = b
	r.pending = make(map[string]*pendingRequest)
}

// replySubject returns the reply subject of a request whose response topic
// maps to subject: one of requestPrefix that restores corr on the way
// back, or subject itself when there is no correlation data to restore.
func (r *requests) replySubject(subject string, corr []byte) string {
	if len(corr) == 0 {
		return subject
	}
	r.once.Do(func() {
		r.sub = r.b.srv.NewInternalSub(requestPrefix+"*", nil, 0, r.reply)
		r.b.srv.ReplaceSubs(nil, []*loop.Sub{r.sub})
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	size := len(subject) + len(corr)
	if len(r.pending) >= maxRequests || r.bytes+size > maxRequestBytes {
		return subject
	}
	token := nuid.Next()
	r.pending[token] = &pendingRequest{subject: subject, corr: append([]byte(nil), corr...), expires: unixNow() + requestTTL}
	r.bytes += size
	return requestPrefix + token
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
	r.b.srv.PublishInternal(p.subject, "", out, payload)
}

// sweep forgets requests past their time.
func (r *requests) sweep(now int64) {
	r.mu.Lock()
	for t, p := range r.pending {
		if now >= p.expires {
			delete(r.pending, t)
			r.bytes -= len(p.subject) + len(p.corr)
		}
	}
	r.mu.Unlock()
}

package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// Status replies of direct get; header-only messages as nats-server sends.
var (
	statusNoResponders = []byte("NATS/1.0 503\r\n\r\n")
	statusNotFound     = []byte("NATS/1.0 404 Message Not Found\r\n\r\n")
	statusBadRequest   = []byte("NATS/1.0 408 Bad Request\r\n\r\n")
)

// directGet serves $JS.API.DIRECT.GET.<stream>[.<subject>]: the stored
// message itself, with Nats-Stream/-Subject/-Sequence/-Time-Stamp headers,
// rather than a JSON envelope. Streams without allow_direct do not answer,
// which the requester sees as no responders, as with nats-server.
func (m *Manager) directGet(op string, r *request) {
	if r.reply == "" {
		return
	}
	name, subject, _ := strings.Cut(strings.TrimPrefix(op, "DIRECT.GET."), ".")
	st := m.streams[name]
	if st == nil || !st.cfg.AllowDirect {
		m.host.Publish(r.reply, "", statusNoResponders, nil)
		return
	}
	var msg *store.Msg
	var err error
	if subject != "" {
		msg, err = st.lastFor(subject)
	} else {
		var req msgGetRequest
		if json.Unmarshal(r.data, &req) != nil || (req.Seq == 0 && req.LastFor == "" && req.NextFor == "") {
			m.apiErrors++
			m.host.Publish(r.reply, "", statusBadRequest, nil)
			return
		}
		msg, err = st.get(req)
	}
	if errors.Is(err, store.ErrNotFound) || msg == nil {
		m.host.Publish(r.reply, "", statusNotFound, nil)
		return
	}
	m.host.Publish(r.reply, "", directHeaders(name, msg), msg.Data)
}

// directHeaders appends the direct-get headers to the message's own.
func directHeaders(stream string, msg *store.Msg) []byte {
	hdr := []byte("NATS/1.0\r\n")
	if len(msg.Hdr) > 4 {
		hdr = append([]byte(nil), msg.Hdr[:len(msg.Hdr)-2]...) // drop the blank line that ends it
	}
	ts := time.Unix(0, msg.Time).UTC().Format(time.RFC3339Nano)
	hdr = fmt.Appendf(hdr, "Nats-Stream: %s\r\nNats-Subject: %s\r\nNats-Sequence: %d\r\nNats-Time-Stamp: %s\r\n\r\n",
		stream, msg.Subject, msg.Seq, ts)
	return hdr
}

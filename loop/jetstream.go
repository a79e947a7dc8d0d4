package loop

// Concurrency: Subscribe and Publish are called from any goroutine (the
// Manager, store Writer callbacks); Deliver only from the Manager goroutine,
// since deliverCache takes no lock.

import (
	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/router"
)

// jsHost lets the JetStream manager subscribe and publish inside the server.
// deliverCache is used only by Deliver, which the manager calls from its
// own goroutine alone: consumers deliver to the same few inboxes again and
// again, so their matches come from a cache that needs no lock.
type jsHost struct {
	s            *Server
	deliverCache *matchCache
	toBuf        []byte // Deliver's inbox subject as bytes, reused
}

func (h *jsHost) Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func() {
	return h.s.SubscribeInternal(subject, func(subj, reply []byte, hdrLen int, msg []byte) {
		var hdr []byte
		data := msg
		if hdrLen >= 0 {
			hdr, data = msg[:hdrLen], msg[hdrLen:]
		}
		fn(string(subj), string(reply), hdr, data)
	})
}

func (h *jsHost) Publish(subject, reply string, hdr, data []byte) {
	h.s.PublishInternal(subject, reply, hdr, data)
}

// Deliver delivers a consumer's message; with resume set (a push
// consumer) it reports false when a destination is over its high-water
// mark, having registered resume to run when it drains (holdInternal).
func (h *jsHost) Deliver(to, subject, reply string, hdr, data []byte, resume func()) bool {
	h.toBuf = append(h.toBuf[:0], to...)
	r := h.deliverCache.Match(h.toBuf)
	h.s.deliverMatched(r, subject, reply, hdr, data)
	return resume == nil || !h.s.holdInternal(r, resume)
}

// Interest reports whether to has subscribers, from Deliver's cache.
func (h *jsHost) Interest(to string) bool {
	h.toBuf = append(h.toBuf[:0], to...)
	return !h.deliverCache.Match(h.toBuf).Empty()
}

// startJetStream starts the manager when JetStream is enabled.
func (s *Server) startJetStream() error {
	if !s.opts.JetStream {
		return nil
	}
	m, err := jetstream.Start(jetstream.Config{
		StoreDir: s.opts.StoreDir, Sync: s.opts.JetStreamSync,
		MaxMemory: s.opts.JetStreamMaxMemory, MaxStore: s.opts.JetStreamMaxStore,
		FS: s.opts.JetStreamFS, Errorf: s.Errorf, ServerName: s.opts.ServerName,
	}, &jsHost{s: s, deliverCache: router.NewCache(s.sl, 1024)})
	if err != nil {
		return err
	}
	s.js = m
	s.Noticef("JetStream enabled, store directory %s", s.opts.StoreDir)
	return nil
}

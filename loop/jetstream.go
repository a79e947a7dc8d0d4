package loop

// Concurrency: Subscribe and Publish are called from any goroutine (the
// Manager, store Writer callbacks); Deliver and Interest only by the
// holder of the Manager's state (its goroutine, or a publisher's handling
// a publish in place under the Manager's own mutex, which orders the
// calls), since deliverCache takes no lock.

import (
	"fmt"
	"strings"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/router"
)

// jsHost lets a JetStream manager subscribe and publish inside the server,
// in its account's subject space (acc; $G for the server's own manager).
// deliverCache is used only by Deliver and Interest, which the manager
// calls only while it holds its state (one at a time): consumers deliver to the same few inboxes again and
// again, so their matches come from a cache that needs no lock.
type jsHost struct {
	s            *Server
	acc          *account
	deliverCache *matchCache
	toBuf        []byte      // Deliver's inbox subject as bytes, reused
	bufs         deliverBufs // Deliver's message as bytes, reused
}

func (h *jsHost) Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func() {
	sub := internalSub(subject, func(subj, reply []byte, hdrLen int, msg []byte) {
		var hdr []byte
		data := msg
		if hdrLen >= 0 {
			hdr, data = msg[:hdrLen], msg[hdrLen:]
		}
		fn(string(subj), string(reply), hdr, data)
	})
	sl := h.acc.sl
	sl.Insert(sub)
	return func() { sl.Remove(sub) }
}

// SubscribeAPI is Subscribe for the $JS.API: fn also gets who sent each
// request but pulls and direct gets (jetstream.ClientHost), read on the publisher's
// goroutine, which owns its connection.
func (h *jsHost) SubscribeAPI(subject string, fn func(subject, reply string, hdr, data []byte, client *jetstream.ClientInfo)) func() {
	sub := internalSub(subject, nil)
	sub.Owner.internal = func(subj, reply []byte, hdrLen int, msg []byte) {} // never called: cross is
	sub.Owner.cross = func(o origin, subj, reply []byte, hdrLen int, msg []byte) {
		var hdr []byte
		data := msg
		if hdrLen >= 0 {
			hdr, data = msg[:hdrLen], msg[hdrLen:]
		}
		s := string(subj)
		var ci *jetstream.ClientInfo
		if o.pub != nil && !jetstream.Unaudited(s) {
			ci = o.pub.clientInfo()
		}
		fn(s, string(reply), hdr, data, ci)
	}
	sl := h.acc.sl
	sl.Insert(sub)
	return func() { sl.Remove(sub) }
}

// clientInfo is c as nats-server describes a client in advisories. Runs
// in c's context.
func (c *client) clientInfo() *jetstream.ClientInfo {
	start := c.start.UTC()
	ci := &jetstream.ClientInfo{Start: &start, Host: c.ip, ID: c.id, User: c.user, Name: c.opts.Name,
		Lang: c.opts.Lang, Version: c.opts.Version, Server: c.srv.opts.ServerName, Kind: "Client", Type: "nats"}
	if c.acc != nil {
		ci.Account = c.acc.name
	}
	return ci
}

func (h *jsHost) Publish(subject, reply string, hdr, data []byte) {
	h.s.deliverMatched(h.acc.sl.Match(subject), subject, reply, hdr, data)
}

// Deliver delivers a consumer's message; with resume set (a push
// consumer) it reports false when a destination is over its high-water
// mark, having registered resume to run when it drains (holdInternal).
func (h *jsHost) Deliver(to, subject, reply string, hdr, data []byte, resume func()) bool {
	h.toBuf = append(h.toBuf[:0], to...)
	r := h.deliverCache.Match(h.toBuf)
	h.s.deliverMatchedBufs(r, to, subject, reply, hdr, data, &h.bufs)
	return resume == nil || !h.s.holdInternal(r, resume)
}

// Interest reports whether to has subscribers, from Deliver's cache.
func (h *jsHost) Interest(to string) bool {
	h.toBuf = append(h.toBuf[:0], to...)
	return !h.deliverCache.Match(h.toBuf).Empty()
}

// startJetStream starts the manager of the global account when JetStream
// is enabled, and one per other account that enables it, each with its
// streams under <store_dir>/jetstream/<account>/ and its limits.
func (s *Server) startJetStream() error {
	if !s.opts.JetStream {
		return nil
	}
	start := func(acc *account, maxMem, maxStore int64, maxStreams, maxConsumers int) (*jetstream.Manager, error) {
		name := ""
		if acc != s.gacc {
			name = acc.name
		}
		return jetstream.Start(jetstream.Config{
			StoreDir: s.opts.StoreDir, Sync: s.opts.JetStreamSync,
			MaxMemory: maxMem, MaxStore: maxStore, MaxStreams: maxStreams, MaxConsumers: maxConsumers,
			FS: s.opts.JetStreamFS, Errorf: s.Errorf, ServerName: s.opts.ServerName, Account: name,
			Domain: s.opts.JetStreamDomain,
		}, &jsHost{s: s, acc: acc, deliverCache: router.NewCache(acc.sl, 1024)})
	}
	if err := validDomain(s.opts.JetStreamDomain); err != nil {
		return err
	}
	m, err := start(s.gacc, s.opts.JetStreamMaxMemory, s.opts.JetStreamMaxStore, 0, 0)
	if err != nil {
		return err
	}
	s.js = m
	s.jsDomainSub(s.gacc)
	accs := s.live.Load().auth.accounts
	for _, name := range sortedKeys(accs) {
		ac := accs[name].cfg
		if ac == nil || !ac.JetStream || ac.Name == globalAccount {
			continue
		}
		l := ac.JetStreamLimits
		m, err := start(accs[ac.Name].acc, orUnset(l.MaxMemory), orUnset(l.MaxStore), l.MaxStreams, l.MaxConsumers)
		if err != nil {
			s.stopJetStream()
			return fmt.Errorf("loop: jetstream for account %q: %w", ac.Name, err)
		}
		s.jsAcc = append(s.jsAcc, m)
		s.jsDomainSub(accs[ac.Name].acc)
	}
	s.Noticef("JetStream enabled, store directory %s", s.opts.StoreDir)
	return nil
}

// validDomain checks a JetStream domain where it enters: one subject
// token ("" is none), so that $JS.<domain>.API.> is a subject.
func validDomain(d string) error {
	if d == "" {
		return nil
	}
	if len(d) > 256 || strings.ContainsAny(d, " \t\r\n.*>") {
		return fmt.Errorf("jetstream domain %q: want one subject token", d)
	}
	return nil
}

// jsDomainPrefix is the domain-prefixed API's start, "$JS.<domain>.API.",
// or "" without a domain.
func (s *Server) jsDomainPrefix() string {
	if s.opts.JetStreamDomain == "" {
		return ""
	}
	return "$JS." + s.opts.JetStreamDomain + ".API."
}

// jsDomainSub makes account acc's JetStream addressable by this server's
// domain, as nats-server maps it: a request on $JS.<domain>.API.<rest> is
// delivered in acc as $JS.API.<rest> ($JS.<domain>.API.$KV.<rest> as
// $KV.<rest>, $O likewise), from the requester's own dispatch, so a
// client across a leaf link (which the subscription's interest is shown
// to) reaches it with the domain prefix. The subscription lives as long
// as the account. API requests only: the mapped subject's allocation is
// off the message path.
func (s *Server) jsDomainSub(acc *account) {
	prefix := s.jsDomainPrefix()
	if prefix == "" {
		return
	}
	acc.sl.Insert(crossSub(prefix+">", func(o origin, subject, reply []byte, hdrLen int, msg []byte) {
		rest := string(subject[len(prefix):])
		to := "$JS.API." + rest
		if strings.HasPrefix(rest, "$KV.") || strings.HasPrefix(rest, "$O.") {
			to = rest
		}
		deliverIn(o, acc, to, reply, hdrLen, msg)
	}))
}

// orUnset is a configured limit, or 0 (unlimited, as reported) when unset.
func orUnset(n int64) int64 {
	if n < 0 {
		return 0
	}
	return n
}

// stopJetStream stops every JetStream manager.
func (s *Server) stopJetStream() {
	if s.js != nil {
		s.js.Stop()
	}
	for _, m := range s.jsAcc {
		m.Stop()
	}
}

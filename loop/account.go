package loop

// Concurrency: an account is made once per name (New, or a Reload that
// adds it) and kept for the server's life, so its sublist, and the
// per-loop caches over it, survive reloads. Its sublist is shared like the
// global one (router.Sublist's own lock; the generation an atomic). resp,
// the service replies awaiting their response, is guarded by account.mu, a
// leaf lock taken by import handlers on publishers' goroutines and by
// housekeeping. What a configuration says about an account (its users,
// exports, imports) lives in the authConfig it was loaded with, published
// atomically (live.auth); the internal subscriptions that carry imports
// are installed and removed under Server.reloadMu (installImports).

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/router"
)

// Account names nats-server gives its built-in accounts.
const (
	globalAccount        = "$G"
	defaultSystemAccount = "$SYS"
)

// Service replies: how long a mapping waits for its response when the
// export names no threshold (nats-server's default), and at most how many
// an exporting account holds for each importing account, so that a flood
// of requests cannot grow it without bound nor use up another importer's
// share (past it a request goes on without a reply subject).
const (
	defaultRespThreshold = 2 * time.Minute
	maxPendingResponses  = 100_000
)

// account is one subject space. The global account $G's sublist is
// Server.sl, which every loop's own cache (evLoop.cache) reads, so clients
// of $G publish exactly as before accounts existed; another account's
// clients get their loop's cache of that account's sublist at CONNECT
// (evLoop.cacheFor).
type account struct {
	name string
	sl   *subList

	// respPrefix starts the reply subjects given to this account's
	// services for requests imported from elsewhere ("_R_.<random>.");
	// respSub is the internal subscription that takes their responses.
	respPrefix string
	respOnce   sync.Once

	// sysImports is set once the server's CONNZ responders for this
	// account's own users are in sl (accountSysImports): those two
	// subscriptions are not counted as the account's.
	sysImports atomic.Bool
	userInfo   atomic.Bool // $SYS.REQ.USER.INFO is in sl (userInfoImport)

	// maps are the account's subject mappings (mapping.go), nil when it
	// has none; a publisher loads it once per message.
	maps     atomic.Pointer[mappingSet]
	nextResp atomic.Uint64

	// mapInterest are internal subscriptions on the sources of maps that
	// do nothing themselves: they show link peers (leaf nodes) that this
	// server wants what it maps, as nats-server sends mapping sources to
	// its leaves; mapSubs counts them, left out of the account's
	// subscriptions. Written by setMappings only (New, or under reloadMu).
	mapInterest []*routerSub
	mapSubs     atomic.Int32

	// conns counts the account's client connections (NATS and
	// WebSocket) from their first CONNECT until they end, leafs the leaf
	// nodes bound to it: what its limits are checked against (admit).
	conns, leafs atomic.Int64

	mu struct {
		sync.Mutex
		resp  map[string]*pendingResp // by the reply subject the service saw
		count map[*account]int        // len(resp) by importing account
	}
}

// pendingResp routes a service's responses back to the importing account:
// to is where, reply the requester's own reply subject there.
type pendingResp struct {
	to      *account
	reply   string
	expires int64 // unix nanoseconds
	stream  bool  // stream or chunked: kept until it expires
}

func newAccount(name string, sl *subList) *account {
	if sl == nil {
		sl = router.NewSublist[*subscription]()
	}
	a := &account{name: name, sl: sl}
	a.respPrefix = "_R_." + randToken(6) + "."
	a.mu.resp = make(map[string]*pendingResp)
	a.mu.count = make(map[*account]int)
	return a
}

// errAccountConns is nats-server's error for a connection past its
// account's limit (limits.conn, max_connections).
const errAccountConns = "maximum account active connections exceeded"

// admit counts one more connection of the account unless max (-1:
// unlimited) are there already. Connections racing for the last place
// get it once: the count only moves by compare-and-swap.
func (a *account) admit(max int) bool { return admitTo(&a.conns, max) }

func admitTo(n *atomic.Int64, max int) bool {
	for {
		cur := n.Load()
		if max >= 0 && cur >= int64(max) {
			return false
		}
		if n.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

// limitsOf is acc's limits in this configuration: NoAccountLimits when
// it has none.
func (a *authConfig) limitsOf(acc *account) AccountLimits {
	if sp := a.accounts[acc.name]; sp != nil && sp.cfg != nil && sp.cfg.Limits != nil {
		return *sp.cfg.Limits
	}
	return NoAccountLimits
}

// subsLimit is the most subscriptions a connection may hold: the
// server's max_subscriptions (0: unlimited) and the connection's own
// (-1: none), whichever is smaller; -1 when neither limits.
func subsLimit(server, own int) int {
	if server > 0 && (own < 0 || server < own) {
		return server
	}
	return own
}

// randToken is n random characters valid in a subject token.
func randToken(n int) string {
	const alpha = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alpha[int(b[i])%len(alpha)]
	}
	return string(b)
}

// accountSpec is an account as one configuration describes it, checked.
type accountSpec struct {
	acc     *account
	cfg     *Account // as configured (or made from an account JWT); nil for $G and $SYS left implicit
	exports []*Export
	imports []*Import
	maps    *mappingSet
}

// buildAccounts checks o's accounts and returns them by name, $G
// included: an account that prev (the configuration in force) already has
// is the same *account, so its subscriptions stay. Import errors carry
// nats-server's texts.
func buildAccounts(o *Options, prev map[string]*accountSpec, gacc *account) (map[string]*accountSpec, error) {
	gms, err := compileMappings(o.Mappings)
	if err != nil {
		return nil, fmt.Errorf("loop: mappings: %w", err)
	}
	specs := map[string]*accountSpec{globalAccount: {acc: gacc, maps: gms}}
	for _, ac := range o.Accounts {
		if err := validAccountName(ac.Name); err != nil {
			return nil, err
		}
		if ac.JetStream && !o.JetStream && ac.Name != globalAccount {
			return nil, fmt.Errorf("loop: account %q: jetstream enabled in the account needs jetstream enabled on the server", ac.Name)
		}
		sp := specs[ac.Name]
		if sp != nil && ac.Name != globalAccount {
			return nil, fmt.Errorf("loop: duplicate account %q", ac.Name)
		}
		if sp == nil {
			sp = &accountSpec{}
			if p := prev[ac.Name]; p != nil {
				sp.acc = p.acc
			} else {
				sp.acc = newAccount(ac.Name, nil)
			}
			specs[ac.Name] = sp
		}
		sp.cfg, sp.exports, sp.imports = ac, ac.Exports, ac.Imports
		ms, err := compileMappings(ac.Mappings)
		if err != nil {
			return nil, fmt.Errorf("loop: account %q: %w", ac.Name, err)
		}
		sp.maps = ms
	}
	sys := o.SystemAccount
	if sys == "" {
		sys = defaultSystemAccount
	} else if specs[sys] == nil {
		return nil, fmt.Errorf("loop: system_account %q: account not defined", sys)
	}
	if specs[sys] == nil { // nats-server always has one
		if p := prev[sys]; p != nil {
			specs[sys] = &accountSpec{acc: p.acc}
		} else {
			specs[sys] = &accountSpec{acc: newAccount(sys, nil)}
		}
	}
	for name, sp := range specs {
		for _, e := range sp.exports {
			if err := checkExport(e); err != nil {
				return nil, fmt.Errorf("loop: account %q: %w", name, err)
			}
		}
		for _, im := range sp.imports {
			if err := checkImport(specs, name, im); err != nil {
				return nil, fmt.Errorf("loop: account %q: %w", name, err)
			}
		}
	}
	if err := checkCycles(specs); err != nil {
		return nil, err
	}
	return specs, nil
}

// validAccountName refuses names that cannot be a subject token (account
// names appear in $SYS subjects and, with JetStream, in paths).
func validAccountName(n string) error {
	if n == "" || len(n) > 256 || strings.ContainsAny(n, " \t\r\n.*>/\\") {
		return fmt.Errorf("loop: invalid account name %q", n)
	}
	return nil
}

func checkExport(e *Export) error {
	subj, what := e.Stream, "stream"
	if e.Service != "" {
		subj, what = e.Service, "service"
	}
	if (e.Stream == "") == (e.Service == "") {
		return errors.New("an export needs exactly one of stream or service")
	}
	if !router.ValidSubject(subj) {
		return fmt.Errorf("Error adding %s export %q: invalid subject", what, subj)
	}
	switch e.ResponseType {
	case "", "singleton", "stream", "chunked":
	default:
		return fmt.Errorf("Error adding service export %q: unknown response type %q", subj, e.ResponseType)
	}
	if e.Stream != "" && (e.ResponseType != "" || e.ResponseThreshold != 0) {
		return fmt.Errorf("Error adding stream export %q: response type or threshold on a stream export", subj)
	}
	return nil
}

// checkImport checks one import of account name against its exporter.
func checkImport(specs map[string]*accountSpec, name string, im *Import) error {
	if (im.Stream == nil) == (im.Service == nil) {
		return errors.New("an import needs exactly one of stream or service")
	}
	src, what := im.Stream, "stream"
	if im.Service != nil {
		src, what = im.Service, "service"
	}
	from := specs[src.Account]
	if from == nil {
		return fmt.Errorf("%q account not defined for %s import", src.Account, what)
	}
	if !router.ValidSubject(src.Subject) {
		return fmt.Errorf("Error adding %s import %q: invalid subject", what, src.Subject)
	}
	if src.Account == name {
		return fmt.Errorf("Error adding %s import %q: %s import from the importing account itself", what, src.Subject, what)
	}
	if im.Prefix != "" && (im.Service != nil || !router.ValidLiteralSubject(im.Prefix)) {
		return fmt.Errorf("Error adding %s import %q: invalid prefix %q", what, src.Subject, im.Prefix)
	}
	if im.To != "" && im.Prefix != "" {
		return fmt.Errorf("Error adding %s import %q: both prefix and to", what, src.Subject)
	}
	if im.To != "" && (!router.ValidSubject(im.To) || !mappable(src.Subject, im.To)) {
		return fmt.Errorf("Error adding %s import %q: %q cannot be mapped to %q", what, src.Subject, im.To, src.Subject)
	}
	if exportFor(from.exports, im.Service != nil, name, src.Subject) == nil {
		return fmt.Errorf("Error adding %s import %q: %s import not authorized", what, src.Subject, what)
	}
	return nil
}

// exportFor returns the export of a stream (service false) or service
// that lets account importer import subject, or nil.
func exportFor(exports []*Export, service bool, importer, subject string) *Export {
	for _, e := range exports {
		pat := e.Stream
		if service {
			pat = e.Service
		}
		if pat == "" || !router.SubjectCovers(pat, subject) {
			continue
		}
		if len(e.Accounts) == 0 || contains(e.Accounts, importer) {
			return e
		}
	}
	return nil
}

// mappable reports whether subjects matching a can be rewritten to b: b
// is literal, or has the same wildcards as a in the same order (literal
// tokens may differ in number), so that the k-th wildcard of b takes what
// the k-th of a matched.
func mappable(a, b string) bool {
	if router.ValidLiteralSubject(b) {
		return true
	}
	return wildcards(a) == wildcards(b)
}

// wildcards is the sequence of a pattern's wildcard tokens.
func wildcards(p string) string {
	var w []byte
	for _, t := range strings.Split(p, ".") {
		if t == "*" || t == ">" {
			w = append(w, t[0])
		}
	}
	return string(w)
}

// mapSubject rewrites subject, which matches pattern from, to pattern to
// (mappable): to's literal tokens, and what from's wildcards matched in
// place of to's.
func mapSubject(subject, from, to string) string {
	if from == to {
		return subject
	}
	if router.ValidLiteralSubject(to) {
		return to
	}
	var caps []string
	rest := ""
	st := strings.Split(subject, ".")
	for i, t := range strings.Split(from, ".") {
		if i >= len(st) {
			break
		}
		if t == "*" {
			caps = append(caps, st[i])
		} else if t == ">" {
			rest = strings.Join(st[i:], ".")
			break
		}
	}
	var b strings.Builder
	b.Grow(len(subject) + len(to))
	k := 0
	for i, t := range strings.Split(to, ".") {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case t == "*" && k < len(caps):
			b.WriteString(caps[k])
			k++
		case t == ">":
			b.WriteString(rest)
		default:
			b.WriteString(t)
		}
	}
	return b.String()
}

// importTarget is where an import's messages go in the receiving account:
// a stream's under its prefix or to, a service's request under the
// exporter's subject.
func importTarget(im *Import) (from, to string) {
	if im.Service != nil {
		to = im.Service.Subject
		from = im.To
		if from == "" {
			from = to
		}
		return from, to
	}
	from = im.Stream.Subject
	switch {
	case im.To != "":
		to = im.To
	case im.Prefix != "":
		to = im.Prefix + "." + from
	default:
		to = from
	}
	return from, to
}

// checkCycles refuses imports along which a message could come back to
// an account it passed: stream messages flow from exporter to importer,
// service requests from importer to exporter.
func checkCycles(specs map[string]*accountSpec) error {
	type edge struct {
		from, to         string // accounts, in the direction messages flow
		fromSubj, toSubj string
	}
	var edges []edge
	for name, sp := range specs {
		for _, im := range sp.imports {
			f, t := importTarget(im)
			if im.Stream != nil {
				edges = append(edges, edge{im.Stream.Account, name, f, t})
			} else {
				edges = append(edges, edge{name, im.Service.Account, f, t})
			}
		}
	}
	var walk func(acc, subj string, visited map[string]bool, depth int) bool
	walk = func(acc, subj string, visited map[string]bool, depth int) bool {
		if depth > len(edges) {
			return true
		}
		for _, e := range edges {
			if e.from != acc || !router.SubjectsCollide(e.fromSubj, subj) {
				continue
			}
			if visited[e.to] {
				return true
			}
			visited[e.to] = true
			if walk(e.to, e.toSubj, visited, depth+1) {
				return true
			}
			delete(visited, e.to)
		}
		return false
	}
	for _, e := range edges {
		if walk(e.to, e.toSubj, map[string]bool{e.from: true, e.to: true}, 0) {
			what := "stream"
			if specs[e.from] != nil && importOf(specs[e.from].imports, e.to, e.fromSubj) {
				what = "service"
			}
			return fmt.Errorf("loop: Error adding %s import %q: import forms a cycle", what, e.fromSubj)
		}
	}
	return nil
}

func importOf(imports []*Import, acc, from string) bool {
	for _, im := range imports {
		if im.Service != nil && im.Service.Account == acc {
			if f, _ := importTarget(im); f == from {
				return true
			}
		}
	}
	return false
}

// installImports subscribes, in each exporting account, what carries
// specs' imports to the importers, and returns what removes them.
// Caller holds reloadMu (or is New).
func (s *Server) installImports(specs map[string]*accountSpec) []func() {
	var undo []func()
	for name, sp := range specs {
		dst := sp.acc
		for _, im := range sp.imports {
			from, to := importTarget(im)
			if im.Stream != nil {
				src := specs[im.Stream.Account].acc
				pfx := ""
				if im.Prefix != "" {
					pfx = im.Prefix + "."
				}
				sub := crossSub(from, func(o origin, subject, reply []byte, hdrLen int, msg []byte) {
					if pfx != "" {
						deliverIn(o, dst, pfx+string(subject), reply, hdrLen, msg)
						return
					}
					deliverIn(o, dst, mapSubject(string(subject), from, to), reply, hdrLen, msg)
				})
				src.sl.Insert(sub)
				undo = append(undo, func() { src.sl.Remove(sub) })
				continue
			}
			exp := specs[im.Service.Account]
			svc := exp.acc
			e := exportFor(exp.exports, true, name, to)
			stream := e.ResponseType == "stream" || e.ResponseType == "chunked"
			ttl := e.ResponseThreshold
			if ttl <= 0 {
				ttl = defaultRespThreshold
			}
			svc.respOnce.Do(func() {
				svc.sl.Insert(crossSub(svc.respPrefix+">", func(o origin, subject, _ []byte, hdrLen int, msg []byte) {
					svc.serviceResponse(o, subject, hdrLen, msg)
				}))
			})
			sub := crossSub(from, func(o origin, subject, reply []byte, hdrLen int, msg []byte) {
				target := mapSubject(string(subject), from, to)
				if ms := svc.maps.Load(); ms != nil { // the service account's mappings, as nats-server
					if t, ok := ms.apply([]byte(target)); ok {
						target = string(t)
					}
				}
				r := svc.sl.Match(target)
				if r.Empty() {
					// As nats-server: a requester that asked for it hears
					// that nobody serves the import (on its own goroutine:
					// internal subscriptions are served where dispatch runs).
					if pub := o.pub; pub != nil && len(reply) > 0 && pub.opts.NoResponders && pub.opts.Headers {
						pub.noResponders(subject, reply)
					}
					return
				}
				var rep []byte
				if len(reply) > 0 {
					rep = svc.mapReply(dst, reply, ttl, stream)
				}
				dispatch(o, r, []byte(target), rep, hdrLen, msg)
			})
			dst.sl.Insert(sub)
			undo = append(undo, func() { dst.sl.Remove(sub) })
		}
	}
	return undo
}

// mapReply records where a response to a request imported from account
// to, with reply subject reply there, must go, and returns the reply
// subject the service sees (nil when too many wait already).
func (a *account) mapReply(to *account, reply []byte, ttl time.Duration, stream bool) []byte {
	// The counter makes it unique, the random part unguessable: a
	// responder must not derive another request's reply from its own.
	n := a.nextResp.Add(1)
	rep := strconv.AppendUint([]byte(a.respPrefix), n, 36)
	rep = append(rep, '.')
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	rep = strconv.AppendUint(rep, binary.LittleEndian.Uint64(rnd[:]), 36)
	p := &pendingResp{to: to, reply: string(reply), expires: time.Now().Add(ttl).UnixNano(), stream: stream}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.mu.count[to] >= maxPendingResponses {
		return nil
	}
	a.mu.resp[string(rep)] = p
	a.mu.count[to]++
	return rep
}

// serviceResponse takes a response published in account a to a mapped
// reply subject back to the requester's account and reply subject.
func (a *account) serviceResponse(o origin, subject []byte, hdrLen int, msg []byte) {
	a.mu.Lock()
	p := a.mu.resp[string(subject)]
	if p != nil && !p.stream {
		a.dropResp(string(subject), p)
	}
	a.mu.Unlock()
	if p == nil || time.Now().UnixNano() > p.expires {
		return
	}
	deliverIn(o, p.to, p.reply, nil, hdrLen, msg)
}

// dropResp forgets the mapping p at reply subject k. Caller holds a.mu.
func (a *account) dropResp(k string, p *pendingResp) {
	delete(a.mu.resp, k)
	if a.mu.count[p.to]--; a.mu.count[p.to] <= 0 {
		delete(a.mu.count, p.to)
	}
}

// expireResponses drops service reply mappings past their threshold;
// housekeeping runs it once a second.
func (s *Server) expireResponses(now time.Time) {
	t := now.UnixNano()
	for _, sp := range s.live.Load().auth.accounts {
		a := sp.acc
		a.mu.Lock()
		for k, p := range a.mu.resp {
			if t > p.expires {
				a.dropResp(k, p)
			}
		}
		a.mu.Unlock()
	}
}

// deliverIn delivers a message that crosses into account a (an import)
// to a's subscribers. It runs inside the dispatch of the message in the
// account it leaves, on the publisher's goroutine, and dispatches again
// from the same origin: the publisher's loop forwards to other loops and
// waits for slow subscribers of a as it does for its own account's.
func deliverIn(o origin, a *account, subject string, reply []byte, hdrLen int, msg []byte) {
	if r := a.sl.Match(subject); !r.Empty() {
		dispatch(o, r, []byte(subject), reply, hdrLen, msg)
	}
}

// crossSub builds, without inserting, an import's internal subscription:
// fn gets the origin of the dispatch that matched it (deliverHere).
func crossSub(subject string, fn func(o origin, subject, reply []byte, hdrLen int, msg []byte)) *routerSub {
	sub := internalSub(subject, func([]byte, []byte, int, []byte) {}) // cross is called instead
	sub.Owner.cross = fn
	return sub
}

// cacheFor is this loop's cache of account a's sublist, made on first use.
// Runs on the loop.
func (lp *evLoop) cacheFor(a *account) *matchCache {
	if a.sl == lp.srv.sl {
		return lp.cache
	}
	if c := lp.accCaches[a]; c != nil {
		return c
	}
	if lp.accCaches == nil {
		lp.accCaches = make(map[*account]*matchCache)
	}
	c := router.NewCache(a.sl, router.DefaultCacheSize)
	lp.accCaches[a] = c
	return c
}

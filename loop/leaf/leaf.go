// Package leaf links an evnats server with other NATS servers as leaf
// nodes: it connects out to nats-server hubs (leafnodes { remotes }) and
// takes leaf connections in (leafnodes { port }). Each connection is a
// link (loop.Link): the peer's interest becomes link subscriptions in the
// global sublist, so local publishes reach the peer only where it wants
// them, and the peer's messages enter the server's one delivery path
// (loop.LinkPublisher). Interest is watched on the sublist
// (loop.Server.WatchInterest) and told to every peer as LS+/LS-.
//
// Concurrency: the manager's interest table and link list are guarded by
// manager.mu; the interest watcher runs with the sublist locked and takes
// manager.mu, then a link's mu, so the lock order is sublist <
// manager.mu < remote.mu and neither leaf lock is held while calling into
// the sublist. Each remote runs one goroutine that dials, reads and
// dispatches, and one writer per connection; each accepted connection
// runs a reader and a writer goroutine; the listener one accept loop.
package leaf

import (
	"crypto/tls"
	"net"
	"slices"
	"sort"
	"sync"

	"github.com/evnats/evnats/loop"
)

func init() { loop.RegisterLeaf(open) }

// manager owns the links of one server and the table of interest they
// advertise.
type manager struct {
	s   *loop.Server
	ln  net.Listener
	tls *tls.Config    // accepted leaves' TLS (leafnodes { tls }); nil: none
	wg  sync.WaitGroup // accepted connections and the accept loop

	// mu guards remotes, interest and links; a link's mu is taken under
	// it, never the other way round.
	mu       sync.Mutex
	remotes  []*remote // the configured hubs (a reload adds and removes them)
	interest map[ikey]*icount
	links    []*remote            // every link that is up or retrying: remotes, then accepted ones
	accepted map[*remote]struct{} // accepted connections, from accept to end
	closed   bool                 // Close has begun: accept no more
	nextCID  uint64

	// watchMu serialises installing interest watchers; watched (under it)
	// holds the accounts watched, each once. Order: watchMu < sublist <
	// mu.
	watchMu sync.Mutex
	watched map[string]*loop.LinkAccount
}

// ikey is one line of interest: an account, a subject, and a queue group
// or "". (The peer's interest a link holds, remote.subs, leaves acc
// empty: it is all the link's account's.)
type ikey struct{ acc, subject, queue string }

// icount is how many subscriptions want one line of interest: this
// server's own, and each link peer's. Guarded by manager.mu.
type icount struct {
	local int
	by    map[*remote]int // nil until a link's peer shows the interest
}

// visible is how much of c link r's peer is told of: a peer hears this
// server's own interest and that of peers it is a hub for (accepted
// links); interest learnt from a hub (a remote) goes only to accepted
// links, as nats-server's spoke rule has it, and a peer never hears its
// own back.
func (c *icount) visible(r *remote) int {
	n := c.local
	for src, k := range c.by {
		if src != r && (src.accepted || r.accepted) {
			n += k
		}
	}
	return n
}

// open starts every configured remote and the leafnode listener; the
// links come up in the background, so the server serves locally whether
// or not a hub answers.
func open(s *loop.Server) (interface{ Close() }, error) {
	o := s.Options()
	m := &manager{s: s, interest: map[ikey]*icount{}, accepted: map[*remote]struct{}{},
		watched: map[string]*loop.LinkAccount{}}
	for i := range o.LeafRemotes {
		r, err := newRemote(m, o.LeafRemotes[i], o.LeafReconnect)
		if err == nil {
			err = r.bind()
		}
		if err != nil {
			return nil, err
		}
		m.nextCID++
		r.mu.cid = m.nextCID
		m.remotes = append(m.remotes, r)
	}
	m.links = append(m.links, m.remotes...)
	if err := checkLeafAuth(s, &o); err != nil {
		return nil, err
	}
	if o.LeafPort != 0 {
		if err := m.listen(o); err != nil {
			return nil, err
		}
	}
	for _, r := range m.remotes {
		m.watch(r.acc)
	}
	for _, r := range m.remotes {
		go r.run()
	}
	return m, nil
}

// Close stops every link, the listener and the interest watch.
func (m *manager) Close() {
	m.watchMu.Lock()
	for _, la := range m.watched {
		la.Watch(nil)
	}
	m.watched = map[string]*loop.LinkAccount{}
	m.watchMu.Unlock()
	if m.ln != nil {
		m.ln.Close()
	}
	m.mu.Lock()
	remotes := append([]*remote(nil), m.remotes...)
	m.mu.Unlock()
	for _, r := range remotes {
		r.close()
	}
	m.mu.Lock()
	m.closed = true
	var acc []*remote
	for r := range m.accepted {
		acc = append(acc, r)
	}
	m.mu.Unlock()
	for _, r := range acc {
		r.close()
	}
	m.wg.Wait()
}

// watch starts counting la's interest, unless it is already counted:
// the watcher is installed once per account, and its replay of what the
// account holds fills the table before any link of it is up.
func (m *manager) watch(la *loop.LinkAccount) {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	name := la.Name()
	if _, ok := m.watched[name]; ok {
		return
	}
	m.watched[name] = la
	la.Watch(func(subject, queue string, src loop.Link, added bool) {
		m.change(name, subject, queue, src, added)
	})
}

// change counts interest in account acc and tells each connected peer
// bound to it when a line of what it may see appears, disappears, or
// (queue groups) changes weight. It runs with the account's sublist
// locked (loop.LinkAccount.Watch).
func (m *manager) change(acc, subject, queue string, src loop.Link, added bool) {
	k := ikey{acc, subject, queue}
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.interest[k]
	if c == nil {
		if !added {
			return
		}
		c = &icount{}
		m.interest[k] = c
	}
	from, _ := src.(*remote)
	before := make([]int, 0, 8)
	for _, r := range m.links {
		before = append(before, c.visible(r))
	}
	d := -1
	if added {
		d = 1
	}
	if from == nil {
		c.local = max(c.local+d, 0)
	} else {
		if c.by == nil {
			c.by = map[*remote]int{}
		}
		if n := c.by[from] + d; n > 0 {
			c.by[from] = n
		} else {
			delete(c.by, from)
		}
	}
	for i, r := range m.links {
		if r.acc.Name() != acc {
			continue
		}
		n := c.visible(r)
		switch {
		case n == before[i] || !r.imports(subject):
		case n == 0:
			r.queueProto(func(b []byte) []byte { return appendUnsub(b, subject, queue) })
		case queue != "" || before[i] == 0:
			r.queueProto(func(b []byte) []byte { return appendSub(b, subject, queue, n) })
		}
	}
	if c.local == 0 && len(c.by) == 0 {
		delete(m.interest, k)
	}
}

// snapshotLocked appends LS+ for all interest r's peer may see. m.mu is
// held.
func (m *manager) snapshotLocked(b []byte, r *remote) []byte {
	acc := r.acc.Name()
	for k, c := range m.interest {
		if k.acc != acc {
			continue
		}
		if n := c.visible(r); n > 0 && r.imports(k.subject) {
			b = appendSub(b, k.subject, k.queue, n)
		}
	}
	return b
}

// Links describes the links that are up (loop.Server.LeafLinks).
// With subs, each link's subscriptions (the peer's interest) are listed.
// TrimLeaves closes the newest leaf links bound to each account past
// limit(account) (a lowered max_leafnodes), as nats-server keeps the
// oldest; a closed leaf that comes back is refused while the account is
// full. Called by the server after a reload or claims update.
func (m *manager) TrimLeaves(limit func(account string) int) {
	m.mu.Lock()
	links := append([]*remote(nil), m.links...)
	m.mu.Unlock()
	type linked struct {
		r   *remote
		cid uint64
	}
	byAcc := map[string][]linked{}
	for _, r := range links {
		r.mu.Lock()
		up, cid := r.mu.up && r.mu.conn != nil, r.mu.cid
		r.mu.Unlock()
		if r.accepted && up && r.acc != nil {
			byAcc[r.acc.Name()] = append(byAcc[r.acc.Name()], linked{r, cid})
		}
	}
	for acc, ls := range byAcc {
		max := limit(acc)
		if max < 0 || len(ls) <= max {
			continue
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].cid < ls[j].cid })
		for _, l := range ls[max:] {
			l.r.mu.Lock()
			conn, peer := l.r.mu.conn, l.r.mu.peer
			l.r.mu.Unlock()
			if conn != nil {
				m.s.Noticef("Leafnode connection %q closed: account %q: maximum account active connections exceeded", peer, acc)
				conn.Close()
			}
		}
	}
}

func (m *manager) Links(subs bool) []loop.LeafLink {
	m.mu.Lock()
	links := append([]*remote(nil), m.links...)
	m.mu.Unlock()
	var out []loop.LeafLink
	for _, r := range links {
		r.mu.Lock()
		if !r.mu.up || r.mu.conn == nil {
			r.mu.Unlock()
			continue
		}
		l := loop.LeafLink{ID: r.mu.cid, Name: r.mu.peer, IsSpoke: !r.accepted, Account: r.acc.Name(),
			OutMsgs: r.mu.outMsgs, OutBytes: r.mu.outBytes, Compression: r.mu.compression}
		if a, ok := r.mu.conn.RemoteAddr().(*net.TCPAddr); ok {
			l.IP, l.Port = a.IP.String(), a.Port
		}
		r.mu.Unlock()
		l.InMsgs, l.InBytes = r.inMsgs.Load(), r.inBytes.Load()
		l.NumSubs = uint32(r.nsubs.Load())
		if subs {
			r.smu.Lock()
			l.Subs = make([]string, 0, len(r.subs))
			for k := range r.subs {
				if k.queue == "" {
					l.Subs = append(l.Subs, k.subject)
				} else {
					l.Subs = append(l.Subs, k.subject+" "+k.queue)
				}
			}
			r.smu.Unlock()
			slices.Sort(l.Subs)
		}
		out = append(out, l)
	}
	return out
}

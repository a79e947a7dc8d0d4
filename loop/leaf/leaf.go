// Package leaf connects an evnats server to nats-server hubs as a leaf
// node (leafnodes { remotes }): the edge side of NATS's leaf-node
// protocol. Each remote is a link (loop.Link): the hub's interest becomes
// link subscriptions in the global sublist, so local publishes reach the
// hub only where it wants them, and the hub's messages enter the server's
// one delivery path (loop.LinkPublisher). Local interest is watched on the
// sublist (loop.Server.WatchInterest) and told to every hub as LS+/LS-.
//
// Concurrency: the manager's interest table is guarded by manager.mu; the
// interest watcher runs with the sublist locked and takes manager.mu, then
// a remote's mu, so the lock order is sublist < manager.mu < remote.mu and
// neither leaf lock is held while calling into the sublist. Each remote
// runs one goroutine that dials, reads and dispatches, and one writer per
// connection.
package leaf

import (
	"sync"

	"github.com/evnats/evnats/loop"
)

func init() { loop.RegisterLeaf(open) }

// manager owns the remotes of one server and the table of local interest
// they advertise.
type manager struct {
	s       *loop.Server
	remotes []*remote

	// mu guards interest; a remote's mu is taken under it, never the
	// other way round.
	mu       sync.Mutex
	interest map[ikey]int // local subscriptions per subject and queue group
}

// ikey is one line of interest: a subject, and a queue group or "".
type ikey struct{ subject, queue string }

// open starts every configured remote; the links come up in the
// background, so the server serves locally whether or not a hub answers.
func open(s *loop.Server) (interface{ Close() }, error) {
	o := s.Options()
	m := &manager{s: s, interest: map[ikey]int{}}
	for i := range o.LeafRemotes {
		r, err := newRemote(m, o.LeafRemotes[i], o.LeafReconnect)
		if err != nil {
			return nil, err
		}
		m.remotes = append(m.remotes, r)
	}
	s.WatchInterest(m.watch)
	for _, r := range m.remotes {
		go r.run()
	}
	return m, nil
}

// Close stops every link and the interest watch.
func (m *manager) Close() {
	m.s.WatchInterest(nil)
	for _, r := range m.remotes {
		r.close()
	}
}

// watch counts local interest and tells each connected hub when a line
// of it appears, disappears, or (queue groups) changes weight. It runs
// with the sublist locked (loop.Server.WatchInterest).
func (m *manager) watch(subject, queue string, added bool) {
	k := ikey{subject, queue}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.interest[k]
	if added {
		n++
	} else if n > 0 {
		n--
	}
	if n == 0 {
		delete(m.interest, k)
	} else {
		m.interest[k] = n
	}
	switch {
	case n == 0:
		m.each(subject, func(b []byte) []byte { return appendUnsub(b, subject, queue) })
	case queue != "" || n == 1 && added:
		m.each(subject, func(b []byte) []byte { return appendSub(b, subject, queue, n) })
	}
}

// each queues what add appends on every connected remote that imports
// subject. m.mu is held.
func (m *manager) each(subject string, add func([]byte) []byte) {
	for _, r := range m.remotes {
		if r.imports(subject) {
			r.queueProto(add)
		}
	}
}

// snapshotLocked appends LS+ for all local interest r imports. m.mu is
// held.
func (m *manager) snapshotLocked(b []byte, r *remote) []byte {
	for k, n := range m.interest {
		if r.imports(k.subject) {
			b = appendSub(b, k.subject, k.queue, n)
		}
	}
	return b
}

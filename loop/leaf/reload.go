package leaf

// Config reload of the remotes (leafnodes { remotes }), as nats-server
// reloads them: a remote whose settings are unchanged keeps its link, one
// no longer configured is closed (its hub sees its interest go), a new one
// starts linking, so an account added by the same reload is linked
// without a restart. The loop calls PrepareRemotes with the new list
// before it applies anything (its errors refuse the reload), and the
// apply function it returns once the new accounts are in force; both run
// on the reloading goroutine, one reload at a time.

import (
	"reflect"

	"github.com/evnats/evnats/loop"
)

// PrepareRemotes checks remotes against the running ones and returns
// what makes them the running ones.
func (m *manager) PrepareRemotes(remotes []loop.LeafRemote) (apply func(), err error) {
	m.mu.Lock()
	cur := append([]*remote(nil), m.remotes...)
	m.mu.Unlock()
	keep := make([]bool, len(cur))
	var added []*remote
	delay := m.s.Options().LeafReconnect
	for _, cfg := range remotes {
		found := false
		for i, r := range cur {
			if !keep[i] && reflect.DeepEqual(r.cfg, cfg) {
				keep[i], found = true, true
				break
			}
		}
		if found {
			continue
		}
		r, err := newRemote(m, cfg, delay)
		if err != nil {
			return nil, err
		}
		added = append(added, r)
	}
	var removed []*remote
	for i, r := range cur {
		if !keep[i] {
			removed = append(removed, r)
		}
	}
	return func() { m.applyRemotes(added, removed) }, nil
}

// applyRemotes closes the removed remotes and starts the added ones.
func (m *manager) applyRemotes(added, removed []*remote) {
	for _, r := range removed {
		m.mu.Lock()
		m.remotes = without(m.remotes, r)
		m.links = without(m.links, r)
		m.mu.Unlock()
		r.close()
		m.s.Noticef("Reloaded: LeafNode Remote %s removed", r.name())
		m.unwatchUnused(r.acc)
	}
	for _, r := range added {
		if err := r.bind(); err != nil {
			m.s.Errorf("Reloaded: LeafNode Remote %s: %v", r.name(), err)
			continue
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return
		}
		m.nextCID++
		r.mu.cid = m.nextCID // r does not run yet
		m.remotes = append(m.remotes, r)
		m.links = append(m.links, r)
		m.mu.Unlock()
		m.watch(r.acc)
		go r.run()
		m.s.Noticef("Reloaded: LeafNode Remote %s added", r.name())
	}
}

// unwatchUnused stops counting la's interest once no link is bound to
// it (an account removed with its remote), so that an account added
// again later is counted afresh.
func (m *manager) unwatchUnused(la *loop.LinkAccount) {
	name := la.Name()
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	m.mu.Lock()
	for _, r := range m.links {
		if r.acc != nil && r.acc.Name() == name {
			m.mu.Unlock()
			return
		}
	}
	m.mu.Unlock()
	w, ok := m.watched[name]
	if !ok {
		return
	}
	w.Watch(nil)
	delete(m.watched, name)
	m.mu.Lock()
	for k := range m.interest {
		if k.acc == name {
			delete(m.interest, k)
		}
	}
	m.mu.Unlock()
}

// name is how logs show a remote: its URLs without passwords.
func (r *remote) name() string {
	s := ""
	for i, u := range r.urls {
		if i > 0 {
			s += ", "
		}
		s += redact(u)
	}
	return "[" + s + "]"
}

func without(l []*remote, r *remote) []*remote {
	for i, x := range l {
		if x == r {
			return append(l[:i:i], l[i+1:]...)
		}
	}
	return l
}

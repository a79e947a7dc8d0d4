package loop

// Concurrency: a mappingSet is built when a configuration is taken
// (New, Reload, a claims update) and never changes; an account points to
// its set through an atomic pointer, which a publisher loads once per
// message on its own goroutine. apply allocates only for a subject a
// mapping rewrites.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"

	"github.com/evnats/evnats/router"
	"github.com/evnats/evnats/router/transform"
)

// Mapping rewrites the subject of messages published in an account
// (nats-server's account `mappings`, or an account JWT's): a message on
// a subject Source matches goes to one of Dests, picked by weight
// (percent); where the weights add up to less than 100, the rest of the
// messages keep their subject.
type Mapping struct {
	Source string
	Dests  []MappingDest
}

// MappingDest is one destination of a Mapping: a subject in nats-server's
// destination syntax ("$n", a final ">" and the mapping functions of
// router/transform: wildcard, partition, split, slice, left, right,
// random).
type MappingDest struct {
	Subject string
	Weight  int // percent; 0 is 100
}

// mappingSet is an account's mappings, compiled.
type mappingSet struct {
	exact map[string]*compiledMapping // literal sources
	wild  []*compiledMapping          // wildcard sources, by source
}

type compiledMapping struct {
	src   string
	dests []compiledDest
}

type compiledDest struct {
	weight int
	tr     *transform.Transform
}

var errBadMapping = errors.New("invalid mapping")

// compileMappings checks and compiles an account's mappings; nil when
// there are none.
func compileMappings(ms []*Mapping) (*mappingSet, error) {
	if len(ms) == 0 {
		return nil, nil
	}
	set := &mappingSet{exact: map[string]*compiledMapping{}}
	for _, m := range ms {
		cm, err := compileMapping(m)
		if err != nil {
			return nil, err
		}
		if router.ValidLiteralSubject(m.Source) {
			set.exact[m.Source] = cm
		} else {
			set.wild = append(set.wild, cm)
		}
	}
	sort.Slice(set.wild, func(i, j int) bool { return set.wild[i].src < set.wild[j].src })
	return set, nil
}

func compileMapping(m *Mapping) (*compiledMapping, error) {
	if !router.ValidSubject(m.Source) {
		return nil, fmt.Errorf("%w: source %q is not a valid subject", errBadMapping, m.Source)
	}
	if len(m.Dests) == 0 {
		return nil, fmt.Errorf("%w: %q has no destination", errBadMapping, m.Source)
	}
	cm := &compiledMapping{src: m.Source}
	total := 0
	seen := map[string]bool{}
	for _, d := range m.Dests {
		w := d.Weight
		if w == 0 {
			w = 100
		}
		if w < 0 || w > 100 {
			return nil, fmt.Errorf("%w: %q: weight %d%% is not a percentage", errBadMapping, m.Source, d.Weight)
		}
		if seen[d.Subject] {
			return nil, fmt.Errorf("%w: %q: duplicate entry for %q", errBadMapping, m.Source, d.Subject)
		}
		seen[d.Subject] = true
		total += w
		tr, err := transform.New(m.Source, d.Subject)
		if err == nil && tr == nil {
			err = transform.ErrBadSubject
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %q -> %q: %v", errBadMapping, m.Source, d.Subject, err)
		}
		cm.dests = append(cm.dests, compiledDest{weight: w, tr: tr})
	}
	if total > 100 {
		return nil, fmt.Errorf("%w: %q: weights add up to %d%%, more than 100%%", errBadMapping, m.Source, total)
	}
	return cm, nil
}

// apply returns the subject a message published on subject goes to, and
// whether a mapping changed it.
func (ms *mappingSet) apply(subject []byte) ([]byte, bool) {
	m := ms.exact[string(subject)]
	if m == nil {
		for _, w := range ms.wild {
			if router.SubjectMatches(w.src, subject) {
				m = w
				break
			}
		}
		if m == nil {
			return subject, false
		}
	}
	d := &m.dests[0]
	if len(m.dests) > 1 || d.weight < 100 {
		r, sum := rand.IntN(100), 0
		d = nil
		for i := range m.dests {
			if sum += m.dests[i].weight; r < sum {
				d = &m.dests[i]
				break
			}
		}
		if d == nil {
			return subject, false // the share the weights leave
		}
	}
	out, ok := d.tr.Append(make([]byte, 0, len(subject)+16), subject)
	if !ok {
		return subject, false // a function left an empty token: keep the subject
	}
	return out, true
}

// setMappings points each account at its compiled mappings, and shows
// their sources to link peers.
func setMappings(specs map[string]*accountSpec) {
	for _, sp := range specs {
		a := sp.acc
		a.maps.Store(sp.maps)
		for _, sub := range a.mapInterest {
			a.sl.Remove(sub)
		}
		a.mapInterest = a.mapInterest[:0]
		if sp.maps != nil {
			for _, src := range sp.maps.sources() {
				sub := internalSub(src, func([]byte, []byte, int, []byte) {})
				sub.Owner.shownOnly = true
				a.sl.Insert(sub)
				a.mapInterest = append(a.mapInterest, sub)
			}
		}
		a.mapSubs.Store(int32(len(a.mapInterest)))
	}
}

// sources are the subjects the set maps, in order.
func (ms *mappingSet) sources() []string {
	var out []string
	for src := range ms.exact {
		out = append(out, src)
	}
	sort.Strings(out)
	for _, w := range ms.wild {
		out = append(out, w.src)
	}
	return out
}

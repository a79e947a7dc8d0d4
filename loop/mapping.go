package loop

// Concurrency: a mappingSet is built when a configuration is taken
// (New, Reload, a claims update) and never changes; an account points to
// its set through an atomic pointer, which a publisher loads once per
// message on its own goroutine. apply allocates only for a subject a
// mapping rewrites.

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/evnats/evnats/router"
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

// MappingDest is one destination of a Mapping: a subject made of
// literal tokens, "$n" or "{{wildcard(n)}}" (what Source's n-th "*"
// matched), "{{partition(p, n...)}}" (a hash of the named wildcards'
// tokens, or of the whole subject, modulo p) and, where Source ends in
// ">", a last ">".
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
	toks   []destTok
}

// destTok is one token of a destination: a literal, a wildcard's token
// (wc, 1-based), the rest (">"), or a hash partition into part buckets
// of the wildcards in args (all tokens when none).
type destTok struct {
	lit  string
	wc   int
	rest bool
	part int
	args []int
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
	stoks := strings.Split(m.Source, ".")
	stars := 0
	for _, t := range stoks {
		if t == "*" {
			stars++
		}
	}
	fwc := stoks[len(stoks)-1] == ">"
	cm := &compiledMapping{src: m.Source}
	total := 0
	for _, d := range m.Dests {
		w := d.Weight
		if w == 0 {
			w = 100
		}
		if w < 0 || w > 100 {
			return nil, fmt.Errorf("%w: %q: weight %d%% is not a percentage", errBadMapping, m.Source, d.Weight)
		}
		total += w
		cd := compiledDest{weight: w}
		dtoks := strings.Split(d.Subject, ".")
		for i, tok := range dtoks {
			var dt destTok
			switch {
			case tok == "":
				return nil, fmt.Errorf("%w: destination %q has an empty token", errBadMapping, d.Subject)
			case tok == ">":
				if !fwc || i != len(dtoks)-1 {
					return nil, fmt.Errorf("%w: destination %q has a '>' the source %q does not end with", errBadMapping, d.Subject, m.Source)
				}
				dt.rest = true
			case tok == "*":
				return nil, fmt.Errorf("%w: destination %q: use $n or {{wildcard(n)}} for the source's wildcards", errBadMapping, d.Subject)
			case strings.HasPrefix(tok, "$"):
				n, err := strconv.Atoi(tok[1:])
				if err != nil {
					return nil, fmt.Errorf("%w: bad wildcard reference %q", errBadMapping, tok)
				}
				dt.wc = n
			case strings.Contains(tok, "{{") || strings.Contains(tok, "}}"):
				name, args, ok := mappingFunc(tok)
				switch {
				case ok && name == "wildcard" && len(args) == 1:
					dt.wc = args[0]
				case ok && name == "partition" && len(args) >= 1 && args[0] > 0:
					dt.part, dt.args = args[0], args[1:]
				default:
					return nil, fmt.Errorf("%w: mapping function %q is not supported", errBadMapping, tok)
				}
			default:
				dt.lit = tok
			}
			for _, n := range append([]int{dt.wc}, dt.args...) {
				if n != 0 && (n < 1 || n > stars) || dt.wc < 0 {
					return nil, fmt.Errorf("%w: destination %q refers to wildcard %d, the source %q has %d", errBadMapping, d.Subject, n, m.Source, stars)
				}
			}
			cd.toks = append(cd.toks, dt)
		}
		cm.dests = append(cm.dests, cd)
	}
	if total > 100 {
		return nil, fmt.Errorf("%w: %q: weights add up to %d%%, more than 100%%", errBadMapping, m.Source, total)
	}
	return cm, nil
}

// mappingFunc parses "{{name(a, b, ...)}}" with integer arguments.
func mappingFunc(tok string) (name string, args []int, ok bool) {
	s, ok1 := strings.CutPrefix(tok, "{{")
	s, ok2 := strings.CutSuffix(s, "}}")
	if !ok1 || !ok2 {
		return "", nil, false
	}
	s = strings.TrimSpace(s)
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return "", nil, false
	}
	name = strings.ToLower(strings.TrimSpace(s[:open]))
	for _, a := range strings.Split(s[open+1:len(s)-1], ",") {
		n, err := strconv.Atoi(strings.TrimSpace(a))
		if err != nil {
			return "", nil, false
		}
		args = append(args, n)
	}
	return name, args, true
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
	return d.build(m.src, subject), true
}

// build makes the destination subject for subject, which src matches.
func (d *compiledDest) build(src string, subject []byte) []byte {
	stoks := strings.Split(src, ".")
	toks := strings.Split(string(subject), ".")
	var stars []string
	rest := ""
	for i, t := range stoks {
		switch t {
		case "*":
			stars = append(stars, toks[i])
		case ">":
			rest = strings.Join(toks[i:], ".")
		}
	}
	out := make([]byte, 0, len(subject)+16)
	for i, t := range d.toks {
		if i > 0 {
			out = append(out, '.')
		}
		switch {
		case t.rest:
			out = append(out, rest...)
		case t.wc > 0:
			out = append(out, stars[t.wc-1]...)
		case t.part > 0:
			h := fnv.New32a()
			if len(t.args) == 0 {
				_, _ = h.Write(subject)
			}
			for _, n := range t.args {
				_, _ = h.Write([]byte(stars[n-1]))
			}
			out = strconv.AppendUint(out, uint64(h.Sum32()%uint32(t.part)), 10)
		default:
			out = append(out, t.lit...)
		}
	}
	return out
}

// setMappings points each account at its compiled mappings.
func setMappings(specs map[string]*accountSpec) {
	for _, sp := range specs {
		sp.acc.maps.Store(sp.maps)
	}
}

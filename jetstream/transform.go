package jetstream

// Concurrency: pure values; a transform is immutable once built; any
// goroutine, no locks.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evnats/evnats/router"
)

// A subject transform rewrites the subjects a source or mirror copies:
// src is a filter (wildcards allowed), dest a subject whose tokens are
// literals, "*" and ">" (the next "*" and the ">" that src matched, in
// order) or "{{wildcard(n)}}" / "$n" (src's n-th "*"). nats-server has more
// mapping functions (partition, split, slice); evnats refuses them rather
// than copy messages to subjects the user did not ask for.

// SubjectTransformConfig is one transform of a source or mirror.
type SubjectTransformConfig struct {
	Source      string `json:"src"`
	Destination string `json:"dest"`
}

// transform is a validated, compiled SubjectTransformConfig.
type transform struct {
	src  string  // the filter; ">" when the config left it empty
	dest []piece // nil: subjects are kept
}

// piece is one token of a destination: a literal, or what the n-th "*"
// (n >= 1) or the ">" (n == 0) of src matched.
type piece struct {
	lit      string
	wildcard int
	rest     bool
}

var errBadTransform = errors.New("invalid subject transform")

// compileTransform validates cfg as nats-server's ValidateMapping does for
// what evnats implements.
func compileTransform(cfg SubjectTransformConfig) (transform, error) {
	t := transform{src: cfg.Source}
	if t.src == "" {
		t.src = ">"
	}
	if !router.ValidSubject(t.src) {
		return t, fmt.Errorf("%w: invalid source %q", errBadTransform, t.src)
	}
	if cfg.Destination == "" || cfg.Destination == ">" && t.src == ">" {
		return t, nil
	}
	stars, fwc := 0, false
	for _, tok := range strings.Split(t.src, ".") {
		stars += btoi(tok == "*")
		fwc = fwc || tok == ">"
	}
	nextStar := 0
	for i, tok := range strings.Split(cfg.Destination, ".") {
		p := piece{lit: tok}
		switch {
		case tok == "":
			return t, fmt.Errorf("%w: empty token in destination %q", errBadTransform, cfg.Destination)
		case tok == "*":
			nextStar++
			p = piece{wildcard: nextStar}
		case tok == ">":
			if !fwc || i != strings.Count(cfg.Destination, ".") {
				return t, fmt.Errorf("%w: destination %q has a '>' the source does not match", errBadTransform, cfg.Destination)
			}
			p = piece{rest: true}
		case strings.HasPrefix(tok, "$"):
			n, err := strconv.Atoi(tok[1:])
			if err != nil || n < 1 {
				return t, fmt.Errorf("%w: bad wildcard reference %q", errBadTransform, tok)
			}
			p = piece{wildcard: n}
		case strings.Contains(tok, "{{"):
			n, ok := wildcardFunc(tok)
			if !ok || n < 1 {
				return t, fmt.Errorf("%w: mapping function %q is not supported by this server", errBadTransform, tok)
			}
			p = piece{wildcard: n}
		}
		if p.wildcard != 0 && (p.wildcard < 1 || p.wildcard > stars) {
			return t, fmt.Errorf("%w: destination %q refers to wildcard %d, the source has %d", errBadTransform, cfg.Destination, p.wildcard, stars)
		}
		t.dest = append(t.dest, p)
	}
	return t, nil
}

// wildcardFunc parses "{{wildcard(n)}}" (spaces and case as nats-server
// allows them).
func wildcardFunc(tok string) (int, bool) {
	s, ok := strings.CutPrefix(tok, "{{")
	if !ok {
		return 0, false
	}
	if s, ok = strings.CutSuffix(s, "}}"); !ok {
		return 0, false
	}
	s = strings.ToLower(strings.TrimSpace(s))
	if s, ok = strings.CutPrefix(s, "wildcard"); !ok {
		return 0, false
	}
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") || !strings.HasSuffix(s, ")") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(s[1 : len(s)-1]))
	return n, err == nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// apply returns subject rewritten, and whether src matched it.
func (t *transform) apply(subject string) (string, bool) {
	if !router.SubjectMatches(t.src, subject) {
		return "", false
	}
	if t.dest == nil {
		return subject, true
	}
	var stars []string
	var rest string
	srcToks, subjToks := strings.Split(t.src, "."), strings.Split(subject, ".")
	for i, tok := range srcToks {
		switch tok {
		case "*":
			stars = append(stars, subjToks[i])
		case ">":
			rest = strings.Join(subjToks[i:], ".")
		}
	}
	var b strings.Builder
	for i, p := range t.dest {
		if i > 0 {
			b.WriteByte('.')
		}
		switch {
		case p.rest:
			b.WriteString(rest)
		case p.wildcard > 0:
			b.WriteString(stars[p.wildcard-1])
		default:
			b.WriteString(p.lit)
		}
	}
	return b.String(), true
}

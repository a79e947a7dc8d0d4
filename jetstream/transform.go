package jetstream

// Concurrency: pure values; a transform is immutable once built; any
// goroutine, no locks.

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/evnats/evnats/router"
	subjtr "github.com/evnats/evnats/router/transform"
)

// A subject transform rewrites the subjects a source or mirror copies:
// src is a filter (wildcards allowed), dest a subject in nats-server's
// destination syntax (router/transform: "$n", a final ">" and the mapping
// functions). evnats also takes a "*" in a link's destination as the
// source's next "*", in order.

// SubjectTransformConfig is one transform of a source or mirror.
type SubjectTransformConfig struct {
	Source      string `json:"src"`
	Destination string `json:"dest"`
}

// transform is a validated, compiled SubjectTransformConfig.
type transform struct {
	src string            // the filter; ">" when the config left it empty
	tr  *subjtr.Transform // nil: subjects are kept
}

var errBadTransform = errors.New("invalid subject transform")

// compileTransform validates a source's or mirror's transform as
// nats-server's ValidateMapping does.
func compileTransform(cfg SubjectTransformConfig) (transform, error) {
	t := transform{src: orAll(cfg.Source)}
	if !router.ValidSubject(t.src) {
		return t, fmt.Errorf("%w: invalid source %q", errBadTransform, t.src)
	}
	if cfg.Destination == "" || cfg.Destination == ">" && t.src == ">" {
		return t, nil
	}
	tr, err := subjtr.New(t.src, numberStars(cfg.Destination))
	if err != nil {
		return t, err
	}
	t.tr = tr
	return t, nil
}

// numberStars writes each "*" of a destination as "$n", n counting them.
func numberStars(dest string) string {
	if !strings.Contains(dest, "*") {
		return dest
	}
	toks, n := strings.Split(dest, "."), 0
	for i, tok := range toks {
		if tok == "*" {
			n++
			toks[i] = "$" + strconv.Itoa(n)
		}
	}
	return strings.Join(toks, ".")
}

// apply returns subject rewritten, and whether src matched it (and the
// result is a valid subject).
func (t *transform) apply(subject string) (string, bool) {
	if t.tr == nil {
		if !router.SubjectMatches(t.src, subject) {
			return "", false
		}
		return subject, true
	}
	return t.tr.Apply(subject)
}

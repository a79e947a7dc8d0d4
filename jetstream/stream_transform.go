package jetstream

// Concurrency: validation is pure (any goroutine); the stream methods run
// on the JetStream Manager goroutine only, which owns streams; no locks.

import (
	"strconv"
	"strings"

	"github.com/evnats/evnats/router"
)

// Stream-level subject transforms, as nats-server's: subject_transform
// rewrites the subject of every message the stream takes in (publishes,
// batches, source and mirror copies) before anything else looks at it; a
// subject its source does not match is kept. Republish (republish.go)
// goes through the same kind of transform. Both follow nats-server's
// stricter rules for these (no "*" in the destination, a ">" on both sides
// or neither), and evnats has only the wildcard mapping function.

// knownMappingFunctions are nats-server's mapping functions: one of these
// evnats lacks is refused as unsupported, any other as unknown.
var knownMappingFunctions = []string{"partition", "wildcard", "splitfromleft", "splitfromright",
	"slicefromleft", "slicefromright", "split", "left", "right", "random"}

// streamTransform compiles a stream-level transform; on failure it returns
// nats-server's reason (the text after "stream transform: ").
func streamTransform(src, dest string) (*transform, string) {
	if src == "" {
		src = ">"
	}
	const bad = "invalid mapping destination: "
	toks := strings.Split(dest, ".")
	for i, tok := range toks {
		switch {
		case tok == "" || i > 0 && toks[i-1] == ">":
			return nil, bad + "invalid transform" + inToken(tok)
		case strings.HasPrefix(tok, "{{") && strings.HasSuffix(tok, "}}") && len(tok) > 4:
			name, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tok[2:len(tok)-2])), "(")
			name = strings.TrimSpace(name)
			if !contains(knownMappingFunctions, name) {
				return nil, bad + "unknown function" + inToken(tok)
			}
			if name != "wildcard" {
				return nil, "mapping function " + tok + " is not supported by this server"
			}
		case strings.ContainsAny(tok, "\t\n\f\r "):
			return nil, bad + "invalid transform"
		}
	}
	if !router.ValidSubject(src) || !router.ValidSubject(dest) ||
		strings.HasSuffix("."+src, ".>") != strings.HasSuffix("."+dest, ".>") || contains(toks, "*") {
		return nil, "invalid subject"
	}
	stars := 0
	for _, tok := range strings.Split(src, ".") {
		stars += btoi(tok == "*")
	}
	for _, tok := range toks {
		if n, ok := wildcardRef(tok); ok && (n < 1 || n > stars) {
			return nil, bad + "wildcard index out of range in " + tok + indexSuffix(n, stars, strings.HasSuffix("."+src, ".>"))
		}
	}
	t, err := compileTransform(SubjectTransformConfig{Source: src, Destination: dest})
	if err != nil {
		return nil, err.Error()
	}
	return &t, ""
}

func inToken(tok string) string {
	if tok == "" {
		return ""
	}
	return " in " + tok
}

// indexSuffix is how nats-server names the index out of range, which it
// leaves out when the source has no wildcard at all.
func indexSuffix(n, stars int, fwc bool) string {
	if stars == 0 && !fwc {
		return ""
	}
	return ": [" + strconv.Itoa(n) + "]"
}

// wildcardRef reads a "$n" or "{{wildcard(n)}}" token.
func wildcardRef(tok string) (int, bool) {
	if rest, ok := strings.CutPrefix(tok, "$"); ok {
		n, err := strconv.Atoi(rest)
		return n, err == nil
	}
	return wildcardFunc(tok)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// subjectTransformRules checks a stream's subject_transform as nats-server
// does: a bad source is 10155, anything else 10156. An empty destination
// is accepted and transforms nothing.
func subjectTransformRules(cfg *StreamConfig) *APIError {
	tc := cfg.SubjectTransform
	if tc == nil || tc.Destination == "" {
		if tc != nil && tc.Source != "" && !router.ValidSubject(tc.Source) {
			return newErr(errTransformSource, "err", "invalid subject "+tc.Source)
		}
		return nil
	}
	if tc.Source != "" && !router.ValidSubject(tc.Source) {
		return newErr(errTransformSource, "err", "invalid subject "+tc.Source)
	}
	if _, reason := streamTransform(tc.Source, tc.Destination); reason != "" {
		return newErr(errTransformDest, "err", reason)
	}
	return nil
}

// compileStreamTransforms builds the stream's transforms from its
// validated config; called when the stream opens and on each update.
func (st *stream) compileStreamTransforms() {
	st.ingest, st.republish = nil, nil
	if tc := st.cfg.SubjectTransform; tc != nil && tc.Destination != "" {
		st.ingest, _ = streamTransform(tc.Source, tc.Destination)
	}
	if rp := st.cfg.RePublish; rp != nil && rp.Destination != "" {
		st.republish, _ = streamTransform(rp.Source, rp.Destination)
	}
}

// ingestSubject is the subject a message taken in on subject is stored
// under.
func (st *stream) ingestSubject(subject string) string {
	if st.ingest == nil {
		return subject
	}
	if to, ok := st.ingest.apply(subject); ok && router.ValidLiteralSubject(to) {
		return to
	}
	return subject
}

package jetstream

// Concurrency: validation is pure (any goroutine); the stream methods run
// on the JetStream Manager goroutine only, which owns streams; no locks.

import (
	"github.com/evnats/evnats/router"
	subjtr "github.com/evnats/evnats/router/transform"
)

// Stream-level subject transforms, as nats-server's: subject_transform
// rewrites the subject of every message the stream takes in (publishes,
// batches, source and mirror copies) before anything else looks at it; a
// subject its source does not match is kept. Republish (republish.go)
// goes through the same kind of transform. Both follow nats-server's
// rules (no "*" in the destination, a ">" on both sides or neither) and
// have its mapping functions (router/transform).

// streamTransform compiles a stream-level transform; on failure it returns
// nats-server's reason (the text after "stream transform: ").
func streamTransform(src, dest string) (*transform, string) {
	src = orAll(src)
	tr, err := subjtr.New(src, dest)
	if err != nil {
		return nil, err.Error()
	}
	if tr == nil {
		return &transform{src: src}, ""
	}
	return &transform{src: src, tr: tr}, ""
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

package jetstream

// Concurrency: pure validation and values; any goroutine, no locks.

import (
	"errors"
	"fmt"

	"github.com/evnats/evnats/router"
)

// Capture rules: which subjects a stream may take, as nats-server decides.
// A stream answers every message it stores with a PubAck to the reply
// subject, so capturing everything (or the API's own subjects) would answer
// every request in the server; and a push consumer whose deliver subject
// its stream captures stores each delivery again, forever.

var errDeliverCycle = errDef{400, 10081, "consumer deliver subject forms a cycle"}

// captureRules checks a stream's validated subjects: no overlaps among
// them, and no capture of everything or of the JetStream and
// system API subjects unless the stream sends no acks.
func captureRules(cfg *StreamConfig) *APIError {
	bad := func(err error) *APIError { return newErr(errStreamConfig, "err", err.Error()) }
	first, with := firstSelfOverlap(cfg.Subjects, router.SubjectsCollide)
	for i, subj := range cfg.Subjects {
		if subj == ">" && !cfg.NoAck {
			return bad(errors.New("capturing all subjects requires no-ack to be true"))
		}
		if !cfg.NoAck {
			for _, ns := range [...]string{"$JS.>", "$JSC.>", "$NRG.>"} {
				if router.SubjectsCollide(subj, ns) && !router.SubjectCovers("$JS.EVENT.>", subj) {
					return bad(errors.New("subjects that overlap with jetstream api require no-ack to be true"))
				}
			}
			if router.SubjectsCollide(subj, "$SYS.>") && !router.SubjectCovers("$SYS.ACCOUNT.>", subj) {
				return bad(errors.New("subjects that overlap with system api require no-ack to be true"))
			}
		}
		if i == first { // the first pair a pairwise loop would meet, found in O(n)
			return bad(fmt.Errorf("subject %q overlaps with %q", subj, cfg.Subjects[with]))
		}
	}
	return nil
}

// deliverCycle refuses a push consumer whose deliver subject subjects
// capture.
func deliverCycle(subjects []string, deliver string) *APIError {
	if deliver == "" {
		return nil
	}
	for _, s := range subjects {
		if router.SubjectMatches(s, deliver) {
			return newErr(errDeliverCycle)
		}
	}
	return nil
}

// updateFormsCycle checks a stream update: the new subjects may not capture
// an existing consumer's deliver subject either.
func updateFormsCycle(st *stream, cfg *StreamConfig) *APIError {
	for _, c := range st.consumers {
		if e := deliverCycle(cfg.Subjects, c.cfg.DeliverSubject); e != nil {
			return e
		}
	}
	return nil
}

package jetstream

// Concurrency: recoverRequest and recoverTick run on the Manager goroutine;
// testHook is an atomic pointer set by tests from any goroutine.

import (
	"runtime/debug"
	"sync/atomic"
)

// testHook, when set (by tests only), runs before each API request is
// served, so that a test can make a handler panic.
var testHook atomic.Pointer[func(subject string)]

// recoverRequest, deferred around one request, turns a panic into a log
// line with the stack and, for an API call, a 500 reply: one bad request
// must not take the whole server down. It is a last line of defence, not a
// fix; every panic it catches is a bug to fix at its cause.
func (m *Manager) recoverRequest(r *request) {
	rec := recover()
	if rec == nil {
		return
	}
	m.logf("jetstream: internal error serving %q: %v\n%s", r.subject, rec, debug.Stack())
	if r.reply == "" || r.ack != nil || r.fast != nil {
		return
	}
	e := newErr(errInternal)
	if r.st != nil {
		m.host.Publish(r.reply, "", nil, mustJSON(&PubAck{Stream: r.st.cfg.Name, Error: e}))
		return
	}
	m.host.Publish(r.reply, "", nil, m.fail("io.nats.jetstream.api.v1.error_response", e))
}

// recoverTick does the same for the timer work.
func (m *Manager) recoverTick() {
	if rec := recover(); rec != nil {
		m.logf("jetstream: internal error in timer work: %v\n%s", rec, debug.Stack())
	}
}

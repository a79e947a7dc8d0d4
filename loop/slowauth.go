package loop

// Concurrency: check runs on the calling goroutine, verifySlow on a new
// one; both only take a slot of sem (a channel), so any goroutine may call
// them. done is called on the verifying goroutine and must hand back (c.t.run).

import (
	"runtime"
	"time"
)

// slowAuth bounds the CPU that slow credential checks (bcrypt) take, so a
// storm of logins cannot starve the event loops: at most max(1,
// GOMAXPROCS/2) run at once, the rest wait their turn. Safe for any
// goroutine.
type slowAuth struct{ sem chan struct{} }

func newSlowAuth() *slowAuth {
	return &slowAuth{sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
}

// check runs fn within the bound, on the calling goroutine, unless its turn
// comes after deadline (the connection's auth timeout): then fn is skipped
// and expired is true, so that a backlog of logins from a storm does not
// spend CPU on connections that are being closed anyway.
func (a *slowAuth) check(deadline time.Time, fn func() bool) (ok, expired bool) {
	a.sem <- struct{}{}
	defer func() { <-a.sem }()
	if !deadline.IsZero() && time.Now().After(deadline) {
		return false, true
	}
	return fn(), false
}

// verifySlow runs check off the caller's goroutine, within the bound, and
// hands its result to done there. A waiting check costs a parked goroutine;
// there is at most one per connection, whose parser is suspended meanwhile.
// An expired check calls nothing: the connection's auth timeout closes it.
func (s *Server) verifySlow(deadline time.Time, check func() bool, done func(ok bool)) {
	go func() {
		if ok, expired := s.slowAuth.check(deadline, check); !expired {
			done(ok)
		}
	}()
}

// authDeadline is when the auth timeout closes c; zero once c is connected
// (a later CONNECT has no deadline).
func (c *client) authDeadline() time.Time {
	if c.connected.Load() {
		return time.Time{}
	}
	return c.start.Add(c.authTimeout())
}

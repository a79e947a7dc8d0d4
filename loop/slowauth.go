package loop

import "runtime"

// slowAuth bounds the CPU that slow credential checks (bcrypt) take, so a
// storm of logins cannot starve the event loops: at most max(1,
// GOMAXPROCS/2) run at once, the rest wait their turn. Safe for any
// goroutine.
type slowAuth struct{ sem chan struct{} }

func newSlowAuth() *slowAuth {
	return &slowAuth{sem: make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))}
}

// check runs fn within the bound, on the calling goroutine.
func (a *slowAuth) check(fn func() bool) bool {
	a.sem <- struct{}{}
	defer func() { <-a.sem }()
	return fn()
}

// verifySlow runs check off the caller's goroutine, within the bound, and
// hands its result to done there. A waiting check costs a parked goroutine;
// there is at most one per connection, whose parser is suspended meanwhile.
func (s *Server) verifySlow(check func() bool, done func(ok bool)) {
	go func() { done(s.slowAuth.check(check)) }()
}

package loop

import (
	"testing"
	"time"
)

// TestSlowAuthSkipsExpired: a check whose turn comes after the connection's
// auth timeout is skipped, so a backlog of bad logins costs no bcrypt for
// connections that are closed anyway; without a deadline it always runs.
func TestSlowAuthSkipsExpired(t *testing.T) {
	a := newSlowAuth()
	ran := false
	fn := func() bool { ran = true; return true }
	if ok, expired := a.check(time.Now().Add(-time.Millisecond), fn); ok || !expired || ran {
		t.Fatalf("past deadline: ok %v expired %v ran %v; want skipped", ok, expired, ran)
	}
	if ok, expired := a.check(time.Time{}, fn); !ok || expired || !ran {
		t.Fatalf("no deadline: ok %v expired %v ran %v; want run", ok, expired, ran)
	}
}

package gnettest

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// An idle loop waits parked in the Go runtime's network poller, holding no
// P, not blocked in an epoll_wait syscall (gnet patch 6); it still wakes
// for a new connection's data.
func TestIdleLoopParks(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := &server{}
			start(t, s, m.et, 1<<20)
			nc := s.dial(t)
			w := &writer{nc: nc}
			w.write(t, 1000)
			s.waitGot(t, 1000)
			deadline := time.Now().Add(5 * time.Second)
			for {
				state := pollerState()
				if state == "IO wait" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("idle loop goroutine is in state %q, want \"IO wait\"", state)
				}
				time.Sleep(time.Millisecond) // polling a state the runtime reports nowhere else
			}
			w.write(t, 1000) // and it wakes for more
			s.waitGot(t, 2000)
		})
	}
}

// pollerState returns the scheduling state of a goroutine running the
// poller's loop ("IO wait", "syscall", "running", ...), or "" if none is.
func pollerState() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	found := ""
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "netpoll.(*Poller).Polling") {
			continue
		}
		head := g[:strings.IndexByte(g, '\n')] // goroutine N [state, ...]:
		state := head[strings.IndexByte(head, '[')+1:]
		if i := strings.IndexAny(state, ",]"); i >= 0 {
			state = state[:i]
		}
		if state != "IO wait" {
			return state
		}
		found = state
	}
	return found
}

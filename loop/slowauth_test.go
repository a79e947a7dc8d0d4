package loop_test

import (
	"bufio"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"golang.org/x/crypto/bcrypt"
)

// bcryptHash returns a bcrypt hash of pw whose check takes at least about
// want on this machine (and build: the race detector slows bcrypt 20x),
// and how long one check takes.
func bcryptHash(t testing.TB, pw string, want time.Duration) (string, time.Duration) {
	for cost := bcrypt.MinCost; ; cost++ {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = bcrypt.CompareHashAndPassword(h, []byte("wrong"))
		if took := time.Since(start); took >= want || cost == bcrypt.MaxCost {
			return string(h), took
		}
	}
}

// TestBcryptConnectPipelined: a client that sends CONNECT for a bcrypt user
// and, in the same write, what it wants done next, gets it all done in
// order once the password is verified; with a wrong password, none of it.
func TestBcryptConnectPipelined(t *testing.T) {
	hash, _ := bcryptHash(t, "pw", 0)
	users := []*loop.User{{Username: "bob", Password: hash}}
	eachTransport(t, loop.Options{Users: users}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"user\":\"bob\",\"pass\":\"pw\",\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
		rc.expect("MSG foo 1 2")
		rc.expect("hi")
		rc.expect("PONG")

		bad := dialRaw(t, s)
		bad.send("CONNECT {\"user\":\"bob\",\"pass\":\"nope\",\"verbose\":false}\r\nSUB foo 2\r\nPING\r\n")
		bad.expect("-ERR 'Authorization Violation'")
		bad.expectClosed()
	})
}

// TestBcryptStormKeepsLoopResponsive: connections hammering a bcrypt user
// with wrong passwords must not hold up other clients on the same loop.
// The bcrypt cost is chosen so that one check takes ~30 ms: checked on the
// loop, a PING behind the storm waits that long or more.
func TestBcryptStormKeepsLoopResponsive(t *testing.T) {
	hash, check := bcryptHash(t, "pw", 30*time.Millisecond)
	users := []*loop.User{{Username: "bob", Password: hash}, {Username: "probe", Password: "p"}}
	eachTransport(t, loop.Options{Users: users}, func(t *testing.T, s *loop.Server) {
		probe := dialRaw(t, s)
		probe.send("CONNECT {\"user\":\"probe\",\"pass\":\"p\",\"verbose\":false}\r\n")
		// rtt returns the median PING round trip over at least span.
		rtt := func(span time.Duration) time.Duration {
			var d []time.Duration
			for end := time.Now().Add(span); len(d) < 10 || time.Now().Before(end); {
				start := time.Now()
				probe.send("PING\r\n")
				probe.expect("PONG")
				d = append(d, time.Since(start))
			}
			slices.Sort(d)
			return d[len(d)/2]
		}
		idle := rtt(0)

		stop := make(chan struct{})
		started := make(chan struct{}, 8)
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
					if err != nil {
						return
					}
					_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
					_, _ = io.WriteString(nc, "CONNECT {\"user\":\"bob\",\"pass\":\"wrong\"}\r\nPING\r\n")
					r := bufio.NewReader(nc)
					for {
						line, err := r.ReadString('\n')
						if err != nil || strings.HasPrefix(line, "-ERR") {
							break
						}
					}
					nc.Close()
					select {
					case started <- struct{}{}:
					default:
					}
				}
			}()
		}
		<-started               // the storm is on: at least one login was refused
		storm := rtt(4 * check) // long enough to meet several checks
		close(stop)
		wg.Wait()
		t.Logf("bcrypt check %v; PING round trip median idle %v, during a storm of bad logins %v", check, idle, storm)
		if storm > check/2 && storm > 10*idle {
			t.Fatalf("PING round trip %v during the storm (idle %v, one bcrypt check %v): the loop is busy with bcrypt", storm, idle, check)
		}
	})
}

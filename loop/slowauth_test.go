package loop_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	mcodec "github.com/evnats/evnats/mqtt/codec"
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
	const authTimeout = 200 * time.Millisecond
	eachTransport(t, loop.Options{Users: users, AuthTimeout: authTimeout}, func(t *testing.T, s *loop.Server) {
		dialed := time.Now()
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"user\":\"bob\",\"pass\":\"pw\",\"verbose\":false}\r\nSUB foo 1\r\nPUB foo 2\r\nhi\r\nPING\r\n")
		rc.expect("MSG foo 1 2")
		rc.expect("hi")
		rc.expect("PONG")
		// a second CONNECT, after the auth timeout, is checked too
		time.Sleep(time.Until(dialed.Add(authTimeout))) // the time passing is what is tested
		rc.send("CONNECT {\"user\":\"bob\",\"pass\":\"pw\",\"verbose\":false}\r\nPUB foo 2\r\nho\r\nPING\r\n")
		rc.expect("MSG foo 1 2")
		rc.expect("ho")
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
	eachTransport(t, loop.Options{Users: users, MQTTPort: -1}, func(t *testing.T, s *loop.Server) {
		for _, mqtt := range []bool{false, true} {
			t.Run(map[bool]string{false: "nats", true: "mqtt"}[mqtt], func(t *testing.T) { bcryptStorm(t, s, mqtt, check) })
		}
	})
}

// bcryptStorm measures a client's PING round trip, idle and while 8
// connections send wrong passwords for a bcrypt user, over NATS or MQTT.
func bcryptStorm(t *testing.T, s *loop.Server, mqtt bool, check time.Duration) {
	{
		probe := dialRaw(t, s)
		probe.send("CONNECT {\"user\":\"probe\",\"pass\":\"p\",\"verbose\":false}\r\n")
		// rtt returns the median PING round trip over at least span. PINGs
		// go out at a steady pace, as a real client's requests would, so
		// that the samples spread over time: a tight loop would crowd into
		// the moments the loop is free.
		rtt := func(span time.Duration) time.Duration {
			var d []time.Duration
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			for end := time.Now().Add(span); len(d) < 10 || time.Now().Before(end); <-pace.C {
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
					addr := s.Addr().String()
					if mqtt {
						addr = s.MQTTAddr().String()
					}
					nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
					if err != nil {
						return
					}
					_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
					if mqtt {
						_, _ = nc.Write(mqttConnect("bob", "wrong"))
						_, _ = io.Copy(io.Discard, nc) // CONNACK 5, then EOF
					} else {
						_, _ = io.WriteString(nc, "CONNECT {\"user\":\"bob\",\"pass\":\"wrong\"}\r\nPING\r\n")
						r := bufio.NewReader(nc)
						for {
							line, err := r.ReadString('\n')
							if err != nil || strings.HasPrefix(line, "-ERR") {
								break
							}
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
		storm := rtt(8 * check) // long enough to meet several checks
		close(stop)
		wg.Wait()
		t.Logf("bcrypt check %v; PING round trip median idle %v, during a storm of bad logins %v", check, idle, storm)
		if storm > check/2 && storm > 10*idle {
			t.Fatalf("PING round trip %v during the storm (idle %v, one bcrypt check %v): the loop is busy with bcrypt", storm, idle, check)
		}
	}
}

// mqttConnect builds an MQTT 3.1.1 CONNECT with a user name and password.
func mqttConnect(user, pass string) []byte {
	str := func(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }
	body := append(str(nil, "MQTT"), 4, 0xc2, 0, 60) // user, password, clean session
	body = str(str(str(body, ""), user), pass)
	return mqttPacket(mcodec.CONNECT<<4, body)
}

func mqttPacket(first byte, body []byte) []byte {
	return append(mcodec.AppendRemainingLength([]byte{first}, len(body)), body...)
}

// TestMQTTBcryptConnectPipelined: the MQTT CONNECT of a bcrypt user is
// checked off the loop; packets sent with it are handled after, in order.
func TestMQTTBcryptConnectPipelined(t *testing.T) {
	hash, _ := bcryptHash(t, "pw", 0)
	users := []*loop.User{{Username: "bob", Password: hash}}
	eachTransport(t, loop.Options{Users: users, MQTTPort: -1}, func(t *testing.T, s *loop.Server) {
		nc, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		in := mqttConnect("bob", "pw")
		in = append(in, mqttPacket(mcodec.SUBSCRIBE<<4|2, []byte{0, 7, 0, 1, 't', 0})...)
		in = append(in, mqttPacket(mcodec.PUBLISH<<4, []byte{0, 1, 't', 'h', 'i'})...)
		in = append(in, mcodec.PINGREQ<<4, 0)
		if _, err := nc.Write(in); err != nil {
			t.Fatal(err)
		}
		want := []byte{mcodec.CONNACK << 4, 2, 0, 0, mcodec.SUBACK << 4, 3, 0, 7, 0,
			mcodec.PUBLISH << 4, 5, 0, 1, 't', 'h', 'i', mcodec.PINGRESP << 4, 0}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(nc, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got % x (%v)\nwant % x", got, err, want)
		}

		bad, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer bad.Close()
		_ = bad.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = bad.Write(append(mqttConnect("bob", "nope"), mcodec.PINGREQ<<4, 0))
		got, err = io.ReadAll(bad)
		if want := []byte{mcodec.CONNACK << 4, 2, 0, mcodec.RefusedNotAuthorized}; !bytes.Equal(got, want) {
			t.Fatalf("wrong password: got % x (%v), want CONNACK 5 then close", got, err)
		}
	})
}

// TestBcryptConnectHoldsLittle: while a bcrypt CONNECT is checked, an event
// loop holds what the client sent after it, but before the client is
// authenticated only HeldBeforeConnect of it: a socket cannot park a 1 MB
// payload in the server behind a password that is still being checked (on
// the goroutine transport the reader waits and the kernel holds it).
func TestBcryptConnectHoldsLittle(t *testing.T) {
	hash, _ := bcryptHash(t, "pw", 100*time.Millisecond)
	big := fmt.Sprintf("PUB x %d\r\n%s", 1<<20, strings.Repeat("x", 2*codec.HeldBeforeConnect))
	mqttBig := append(mqttConnect("bob", "nope"),
		mqttPacket(mcodec.PUBLISH<<4, append([]byte{0, 1, 't'}, make([]byte, 2*codec.HeldBeforeConnect)...))...)
	looptest.Each(t, loop.Options{Users: []*loop.User{{Username: "bob", Password: hash}}, MQTTPort: -1}, func(t *testing.T, o loop.Options) {
		s := startServer(t, o)
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"user\":\"bob\",\"pass\":\"nope\"}\r\n%s", big)
		want := "-ERR 'Maximum Pending Input Exceeded: too much sent before CONNECT was verified'"
		if o.IO == loop.IOGoroutine {
			want = "-ERR 'Authorization Violation'"
		}
		rc.expect(want)
		rc.expectClosed()

		// MQTT: closed at once, without waiting for the check's CONNACK 5.
		nc, err := net.DialTimeout("tcp", s.MQTTAddr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = nc.Write(mqttBig)
		got, _ := io.ReadAll(nc)
		wantMQTT := []byte{}
		if o.IO == loop.IOGoroutine {
			wantMQTT = []byte{mcodec.CONNACK << 4, 2, 0, mcodec.RefusedNotAuthorized}
		}
		if !bytes.Equal(got, wantMQTT) {
			t.Fatalf("MQTT: got % x, want % x then close", got, wantMQTT)
		}
	})
}

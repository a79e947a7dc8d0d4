package loop_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestDeliveryDifferential runs the same client actions against an
// in-process nats-server and evnats (gnet with 1 and 3 loops, goroutine
// transport) and compares what every subscription receives: echo and
// no_echo publishers, a queue group with the publisher inside or outside it,
// auto-unsubscribe on a plain subscription and on a queue member. With 3
// loops the four connections land on different loops, so delivery crosses
// loops. Plain subscriptions must get the same counts; a queue group must
// get every message exactly once in total (members are picked at random, so
// their shares are not compared), a no-echo publisher none of its own, and
// an auto-unsubscribed member no more than its limit.
func TestDeliveryDifferential(t *testing.T) {
	const n = 30 // a 3-member group skips any one member with odds (2/3)^30
	type scenario struct {
		echo    bool
		queue   string // "", "out": publisher outside the group, "in": inside
		automax string // "", "plain", "queue"
	}
	var scs []scenario
	for _, echo := range []bool{true, false} {
		for _, q := range []string{"", "out", "in"} {
			for _, am := range []string{"", "plain", "queue"} {
				if q == "" && am == "queue" {
					continue
				}
				scs = append(scs, scenario{echo, q, am})
			}
		}
	}
	ref := startReference(t)
	servers := map[string]string{}
	for _, tr := range looptest.Transports {
		servers[tr.Name] = startServer(t, loop.Options{IO: tr.IO, Loops: tr.Loops}).Addr().String()
	}
	for _, sc := range scs {
		name := fmt.Sprintf("echo=%v/queue=%q/automax=%q", sc.echo, sc.queue, sc.automax)
		t.Run(name, func(t *testing.T) {
			// Subscriptions, per connection: P publishes.
			subs := map[string]string{
				"P":  "SUB foo 1\r\n",
				"S1": "SUB foo 1\r\n",
				"S2": "",
				"S3": "",
			}
			queue := []string{}
			if sc.queue != "" {
				subs["S2"] += "SUB foo q 1\r\n"
				subs["S3"] += "SUB foo q 1\r\n"
				queue = append(queue, "S2:1", "S3:1")
			}
			if sc.queue == "in" {
				subs["P"] += "SUB foo q 2\r\n"
				queue = append(queue, "P:2")
			}
			limited := map[string]int{}
			switch sc.automax {
			case "plain":
				subs["P"] += "UNSUB 1 3\r\n"
				subs["S1"] += "UNSUB 1 3\r\n"
				limited["P:1"], limited["S1:1"] = 3, 3
			case "queue":
				subs["S2"] += "UNSUB 1 3\r\n"
				limited["S2:1"] = 3
			}
			want := runDelivery(t, ref, sc.echo, subs, n)
			for _, tr := range looptest.Transports {
				got := runDelivery(t, servers[tr.Name], sc.echo, subs, n)
				for _, k := range []string{"P:1", "S1:1"} {
					if got[k] != want[k] {
						t.Errorf("%s: plain subscription %s got %d, nats-server %d", tr.Name, k, got[k], want[k])
					}
				}
				if len(queue) > 0 {
					gw, gg := 0, 0
					for _, k := range queue {
						gw += want[k]
						gg += got[k]
					}
					// nats-server sometimes loses messages when a member
					// auto-unsubscribes (seen: 19 of 30 in CI); evnats
					// must deliver every one, so the bar is n, not gw.
					if gg != n {
						t.Errorf("%s: queue group got %d messages in all, want %d (nats-server %d) (%v)", tr.Name, gg, n, gw, got)
					}
					if gw != n {
						t.Logf("nats-server's queue group got %d of %d messages", gw, n)
					}
				}
				if !sc.echo && got["P:2"] != 0 {
					t.Errorf("%s: no-echo publisher's queue subscription got %d of its own messages", tr.Name, got["P:2"])
				}
				for k, max := range limited {
					if got[k] > max {
						t.Errorf("%s: %s got %d past its auto-unsubscribe limit %d", tr.Name, k, got[k], max)
					}
				}
			}
		})
	}
}

// runDelivery connects P (echo or not) and S1-S3, makes the subscriptions
// in subs, has P publish n messages on foo, and returns how many messages
// each subscription got, keyed "conn:sid". Every subscriber also listens on
// "done", which P publishes last: per-publisher order makes it the end of
// what that connection gets. P itself, which may not see its own "done",
// ends at the PONG after its PUBs (its own subscriptions are served before).
func runDelivery(t *testing.T, addr string, echo bool, subs map[string]string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	p := dialCount(t, addr, echo, "P", counts)
	others := map[string]*countConn{}
	for _, name := range []string{"S1", "S2", "S3"} {
		others[name] = dialCount(t, addr, true, name, counts)
	}
	p.send(subs["P"] + "PING\r\n")
	p.readUntil("")
	for name, c := range others {
		c.send(subs[name] + "SUB done 99\r\nPING\r\n")
		c.readUntil("")
	}
	var b strings.Builder
	for i := range n {
		s := strconv.Itoa(i)
		fmt.Fprintf(&b, "PUB foo %d\r\n%s\r\n", len(s), s)
	}
	b.WriteString("PUB done 0\r\n\r\nPING\r\n")
	p.send(b.String())
	p.readUntil("")
	for _, c := range others {
		c.readUntil("99")
	}
	delete(counts, "S1:99")
	delete(counts, "S2:99")
	delete(counts, "S3:99")
	return counts
}

// countConn is a raw protocol client that counts MSGs per sid.
type countConn struct {
	t      *testing.T
	name   string
	nc     net.Conn
	r      *bufio.Reader
	counts map[string]int
}

func dialCount(t *testing.T, addr string, echo bool, name string, counts map[string]int) *countConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &countConn{t: t, name: name, nc: nc, r: bufio.NewReader(nc), counts: counts}
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := c.r.ReadString('\n'); !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from %s: %q", addr, line)
	}
	c.send(fmt.Sprintf("CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":%v}\r\nPING\r\n", echo))
	c.readUntil("")
	return c
}

func (c *countConn) send(s string) {
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// readUntil counts MSGs until a PONG (sid "") or a MSG for sid.
func (c *countConn) readUntil(sid string) {
	c.t.Helper()
	for {
		_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("%s: %v waiting for %q (counts %v)", c.name, err, sid, c.counts)
		}
		switch {
		case line == "PONG\r\n":
			if sid == "" {
				return
			}
		case line == "PING\r\n":
			c.send("PONG\r\n")
		case strings.HasPrefix(line, "MSG "):
			f := strings.Fields(line)
			size, _ := strconv.Atoi(f[len(f)-1])
			if _, err := c.r.Discard(size + 2); err != nil {
				c.t.Fatal(err)
			}
			c.counts[c.name+":"+f[2]]++
			if f[2] == sid {
				return
			}
		case strings.HasPrefix(line, "-ERR"):
			c.t.Fatalf("%s: %s", c.name, line)
		}
	}
}

//go:build !race

// The race detector's sync.Pool drops items at random, so allocation
// counts are only meaningful without it.

package loop

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestRequestReplyAllocs: a request/reply round trip through a gnet server,
// the service and the requester on one loop or on two, allocates nothing
// in the server in steady state, although every reply goes to a subject
// never seen before (nats.go's muxed inbox, _INBOX.<id>.<token>). Per
// request garbage makes the collector run during request/reply traffic,
// and on two cores its workers take the loops' CPUs: the latency tail.
func TestRequestReplyAllocs(t *testing.T) {
	for _, loops := range []int{1, 2} {
		t.Run(strconv.Itoa(loops)+"loops", func(t *testing.T) {
			s, err := New(Options{Host: "127.0.0.1", Port: -1, Loops: loops})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Shutdown)
			svc := dialAllocs(t, s, "svc", "SUB svc q 1\r\n")
			req := dialAllocs(t, s, "req", "SUB _INBOX.abcdef.* 2\r\n")
			var mu sync.Mutex
			at := map[string]int{}
			s.tr.eachClient(func(c *client) {
				mu.Lock()
				at[c.opts.Name] = c.lp.idx
				mu.Unlock()
			})
			if (loops == 2) != (at["svc"] != at["req"]) {
				t.Fatalf("clients on loops %v, want them on %d", at, loops)
			}

			// Fixed-width tokens keep every line the same length, so the
			// test itself reads and writes preallocated buffers only.
			const tok = "_INBOX.abcdef.00000000"
			pub := []byte("PUB svc " + tok + " 2\r\nhi\r\n")
			msg := make([]byte, len("MSG svc 1 "+tok+" 2\r\nhi\r\n"))
			rep := []byte("PUB " + tok + " 2\r\nok\r\n")
			got := make([]byte, len("MSG "+tok+" 2 2\r\nok\r\n"))
			want := []byte("MSG " + tok + " 2 2\r\nok\r\n")
			n := 0
			setTok := func(b []byte, at int) {
				for i, v := 7, n; i >= 0; i, v = i-1, v/10 {
					b[at+i] = byte('0' + v%10)
				}
			}
			roundTrip := func() {
				n++
				setTok(pub, len("PUB svc _INBOX.abcdef."))
				setTok(rep, len("PUB _INBOX.abcdef."))
				setTok(want, len("MSG _INBOX.abcdef."))
				if _, err := req.Write(pub); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(svc, msg); err != nil {
					t.Fatal(err)
				}
				if _, err := svc.Write(rep); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(req, got); err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Fatalf("requester got %q, want %q", got, want)
				}
			}
			for range 6000 { // past the match cache's size: steady state
				roundTrip()
			}
			if a := testing.AllocsPerRun(3000, roundTrip); a != 0 {
				t.Fatalf("%v allocations per request/reply round trip", a)
			}
		})
	}
}

// dialAllocs connects a raw client named name, sends CONNECT and sub, and
// waits for the PONG that shows the server has them.
func dialAllocs(t *testing.T, s *Server, name, sub string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(time.Minute))
	if _, err := nc.Write([]byte(`CONNECT {"verbose":false,"name":"` + name + `"}` + "\r\n" + sub + "PING\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	for {
		var b [1024]byte
		k, err := nc.Read(b[:])
		if err != nil {
			t.Fatal(err)
		}
		buf = append(buf, b[:k]...)
		if l := len(buf); l >= 6 && string(buf[l-6:]) == "PONG\r\n" {
			return nc
		}
	}
}

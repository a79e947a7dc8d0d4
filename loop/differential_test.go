package loop_test

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	natsserver "github.com/nats-io/nats-server/v2/server"
)

// TestDifferentialAgainstNatsServer sends the same protocol scripts to an
// in-process nats-server and to evnats and requires the same bytes back
// (after INFO), so wire-format details cannot drift from the reference.
func TestDifferentialAgainstNatsServer(t *testing.T) {
	scripts := []struct {
		name  string
		steps []string // each step is sent, then the replies up to its PONG compared
	}{
		{"pubsub", []string{
			"CONNECT {\"verbose\":false,\"headers\":true}\r\nSUB foo.* 1\r\nSUB foo.> q 2\r\nPING\r\n",
			"PUB foo.bar 5\r\nhello\r\nPUB foo.bar reply.x 0\r\n\r\nPING\r\n",
			"HPUB foo.baz 22 25\r\nNATS/1.0\r\nX-Key: v\r\n\r\nabc\r\nPING\r\n",
			"UNSUB 1\r\nPUB foo.bar 1\r\nx\r\nPING\r\n",
		}},
		{"verbose", []string{
			"CONNECT {\"verbose\":true}\r\nPING\r\n",
			"SUB a 1\r\nPUB a 2\r\nok\r\nUNSUB 1\r\nPING\r\n",
		}},
		{"automax", []string{
			"CONNECT {}\r\nSUB m 9\r\nUNSUB 9 2\r\nPING\r\n",
			"PUB m 1\r\na\r\nPUB m 1\r\nb\r\nPUB m 1\r\nc\r\nPING\r\n",
		}},
		{"noresponders", []string{
			"CONNECT {\"headers\":true,\"no_responders\":true}\r\nSUB _INBOX.r 3\r\nPING\r\n",
			"PUB svc _INBOX.r 3\r\nreq\r\nPING\r\n",
		}},
		{"pedantic", []string{
			"CONNECT {\"pedantic\":true}\r\nSUB foo..bar 1\r\nPING\r\n",
			"PUB foo.* 1\r\nx\r\nPING\r\n",
		}},
		{"case and tabs", []string{
			"connect {}\r\nsub\tFOO  7\r\nping\r\n",
			"pub FOO\t3\r\nabc\r\nPiNg\r\n",
		}},
	}
	ref := startReference(t)
	s := startServer(t, loop.Options{})
	for _, sc := range scripts {
		t.Run(sc.name, func(t *testing.T) {
			want := runScript(t, ref, sc.steps)
			got := runScript(t, s.Addr().String(), sc.steps)
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("step %d:\nnats-server: %q\nevnats:      %q", i, want[i], got[i])
				}
			}
		})
	}
}

func startReference(t *testing.T) string {
	t.Helper()
	opts := &natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(5 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns.Addr().String()
}

// runScript returns, for each step, everything the server sent up to and
// including the PONG that answers the step's trailing PING.
func runScript(t *testing.T, addr string, steps []string) []string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	r := bufio.NewReader(nc)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("no INFO from %s: %q", addr, line)
	}
	out := make([]string, len(steps))
	for i, step := range steps {
		if _, err := nc.Write([]byte(step)); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for {
			_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s step %d: %v after %q", addr, i, err, b.String())
			}
			b.WriteString(line)
			if line == "PONG\r\n" {
				break
			}
		}
		out[i] = b.String()
	}
	return out
}

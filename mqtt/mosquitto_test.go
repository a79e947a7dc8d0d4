package mqtt_test

import (
	"bufio"
	"context"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats.go"
)

// TestMosquittoClients runs the README's mosquitto_sub/mosquitto_pub
// commands against evnats, plain and over TLS with --cafile: a retained
// message reaches a later subscriber (which also proves it is subscribed),
// a QoS 1 publish follows it, a NATS subscriber sees the same messages,
// and a client that trusts another CA is refused.
func TestMosquittoClients(t *testing.T) {
	const hint = "apt-get install mosquitto-clients"
	pub, sub := looptest.Tool(t, "mosquitto_pub", hint), looptest.Tool(t, "mosquitto_sub", hint)
	f := tlstest.New(t)
	for _, secure := range []bool{false, true} {
		name := "tcp"
		if secure {
			name = "tls"
		}
		t.Run(name, func(t *testing.T) {
			o := loop.Options{}
			var tlsArgs []string
			if secure {
				o.MQTTTLS = &loop.TLSOptions{CertFile: f.Cert, KeyFile: f.Key}
				tlsArgs = []string{"--cafile", f.CA}
			}
			s := startMQTT(t, o)
			host, port, _ := net.SplitHostPort(s.MQTTAddr().String())
			args := func(extra ...string) []string {
				return append(append([]string{"-h", host, "-p", port}, tlsArgs...), extra...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			run := func(bin string, a ...string) {
				t.Helper()
				if out, err := exec.CommandContext(ctx, bin, a...).CombinedOutput(); err != nil {
					t.Fatalf("%s %s: %v\n%s", bin, strings.Join(a, " "), err, out)
				}
			}

			nc, err := nats.Connect(s.ClientURL(), nats.Timeout(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			natsSub, err := nc.SubscribeSync("a.>")
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}

			run(pub, args("-i", "mpub1", "-t", "a/b", "-m", "hi", "-r", "-q", "1")...)
			cmd := exec.CommandContext(ctx, sub, args("-i", "msub", "-t", "a/#", "-q", "1", "-v", "-C", "2")...)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			if !lines.Scan() || lines.Text() != "a/b hi" {
				t.Fatalf("mosquitto_sub's first line %q, want the retained \"a/b hi\" (%s)", lines.Text(), stderr.String())
			}
			run(pub, args("-i", "mpub2", "-t", "a/c", "-m", "there", "-q", "1")...)
			if !lines.Scan() || lines.Text() != "a/c there" {
				t.Fatalf("mosquitto_sub's second line %q, want \"a/c there\" (%s)", lines.Text(), stderr.String())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("mosquitto_sub: %v (%s)", err, stderr.String())
			}
			for _, want := range []string{"hi", "there"} {
				m, err := natsSub.NextMsg(5 * time.Second)
				if err != nil || string(m.Data) != want {
					t.Fatalf("NATS subscriber: %v, %v; want %q", m, err, want)
				}
			}

			if secure {
				// A certificate from another CA as the only trusted
				// root: the server's certificate does not verify.
				other := f.OtherClientCert
				c := exec.CommandContext(ctx, pub, "-h", host, "-p", port, "--cafile", other, "-i", "bad", "-t", "a/x", "-m", "no")
				if out, err := c.CombinedOutput(); err == nil {
					t.Fatalf("mosquitto_pub trusting another CA connected: %s", out)
				}
				if m, err := natsSub.NextMsg(200 * time.Millisecond); err == nil {
					t.Fatalf("a client that failed the handshake published %q", m.Data)
				}
			}
		})
	}
}

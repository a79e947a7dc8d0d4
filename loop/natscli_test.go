package loop_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
	"github.com/nats-io/nats.go"
)

// natscli finds natscli: $EVNATS_NATSCLI, the bench's bin/nats, or nats on
// PATH (CI builds it into bin/).
func natscli(t *testing.T) string {
	return looptest.Tool(t, "nats", "go install github.com/nats-io/natscli/nats@v0.5.0, or set EVNATS_NATSCLI",
		os.Getenv("EVNATS_NATSCLI"), filepath.Join("..", "bin", "nats"))
}

// TestNatscliTLS runs the README's natscli commands against a server that
// requires client certificates: `nats pub` and `nats request` with
// --tlsca/--tlscert/--tlskey reach a nats.go client; without a client
// certificate natscli is refused.
func TestNatscliTLS(t *testing.T) {
	cli := natscli(t)
	f := tlstest.New(t)
	o := tlsOpts(f)
	o.TLS.Verify, o.TLS.CAFile = true, f.CA
	eachTransport(t, o, func(t *testing.T, s *loop.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		nc := connectTLS(t, s, f, nats.ClientCert(f.ClientCert, f.ClientKey))
		sub, err := nc.SubscribeSync("cli.pub")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := nc.Subscribe("cli.req", func(m *nats.Msg) { _ = m.Respond([]byte("pong:" + string(m.Data))) }); err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "HOME="+t.TempDir(), "NATS_CONTEXT=") // no user contexts
		base := []string{"--server", tlsURL(s), "--tlsca", f.CA, "--timeout", "5s"}
		withCert := append(append([]string{}, base...), "--tlscert", f.ClientCert, "--tlskey", f.ClientKey)
		run := func(args ...string) (string, error) {
			cmd := exec.CommandContext(ctx, cli, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			return string(out), err
		}

		if out, err := run(append(withCert, "pub", "cli.pub", "hello")...); err != nil {
			t.Fatalf("nats pub: %v\n%s", err, out)
		}
		if m, err := sub.NextMsg(5 * time.Second); err != nil || string(m.Data) != "hello" {
			t.Fatalf("nats.go subscriber: %v %v, want hello", m, err)
		}
		out, err := run(append(withCert, "request", "--raw", "cli.req", "ping")...)
		if err != nil || strings.TrimSpace(out) != "pong:ping" {
			t.Fatalf("nats request: %v, output %q, want \"pong:ping\"", err, out)
		}
		if out, err := run(append(base, "pub", "cli.pub", "nocert")...); err == nil {
			t.Fatalf("nats pub without a client certificate succeeded:\n%s", out)
		}
		if m, err := sub.NextMsg(100 * time.Millisecond); err == nil {
			t.Fatalf("a client without a certificate published %q", m.Data)
		}
	})
}

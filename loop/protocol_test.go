package loop_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestMalformedInput checks that every kind of bad input gets an -ERR that
// names the problem, followed by the server closing the connection.
func TestMalformedInput(t *testing.T) {
	cases := []struct{ name, in, err string }{
		{"unknown op", "FOO bar\r\n", "-ERR 'Unknown Protocol Operation'"},
		{"binary junk", "\x00\x01\xfe\xff garbage", "-ERR 'Unknown Protocol Operation'"},
		{"bad connect json", "CONNECT {bad json}\r\n", "-ERR 'Invalid CONNECT JSON: "},
		{"connect no args", "CONNECT\r\n", "-ERR 'Invalid CONNECT: missing JSON options'"},
		{"bad size", "PUB foo abc\r\n", "-ERR 'Invalid PUB Size: \"abc\"'"},
		{"negative size", "PUB foo -5\r\n", "-ERR 'Invalid PUB Size: \"-5\"'"},
		{"missing size", "PUB foo\r\n", "-ERR 'Invalid PUB Arguments: want <subject> [reply] <size>'"},
		{"payload too long", "PUB foo 3\r\nabcdef\r\n", "-ERR 'Message Payload Size Mismatch: expected CRLF after payload'"},
		{"max payload", "PUB foo 2000000\r\n", "-ERR 'Maximum Payload Violation'"},
		{"control line", "SUB " + strings.Repeat("x", 5000) + " 1\r\n", "-ERR 'Maximum Control Line Exceeded'"},
		{"control line no newline", strings.Repeat("S", 5000), "-ERR 'Maximum Control Line Exceeded'"},
		{"hpub header size", "CONNECT {\"verbose\":false,\"headers\":true}\r\nHPUB foo 10 2\r\n", "-ERR 'Invalid HPUB Header Size: \"10\"'"},
		{"bad sub", "SUB\r\n", "-ERR 'Invalid SUB Arguments: want <subject> [queue group] <sid>'"},
		{"bad unsub", "UNSUB 1 x\r\n", "-ERR 'Invalid UNSUB Max: \"x\"'"},
		{"bad protocol", "CONNECT {\"protocol\":7}\r\n", "-ERR 'Invalid Client Protocol'"},
		{"hpub without headers", "CONNECT {\"verbose\":false}\r\nHPUB foo 12 12\r\nNATS/1.0\r\n\r\n\r\n", "-ERR 'Message Headers Not Supported"},
	}
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				rc := dialRaw(t, s)
				rc.send("%s", c.in)
				line := rc.readLine()
				for line == "+OK" {
					line = rc.readLine()
				}
				if !strings.HasPrefix(line, c.err) {
					t.Fatalf("got %q, want prefix %q", line, c.err)
				}
				rc.expectClosed()
			})
		}
		// The server is unharmed: a well-behaved client still works.
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false}\r\nSUB ok 1\r\nPUB ok 2\r\nhi\r\n")
		rc.expect("MSG ok 1 2")
		rc.expect("hi")
	})
}

func TestSoftErrorsKeepConnection(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false,\"pedantic\":true}\r\nSUB foo..bar 1\r\n")
		rc.expect("-ERR 'Invalid Subject'")
		rc.send("PUB foo.* 1\r\nx\r\n")
		rc.expect("-ERR 'Invalid Publish Subject'")
		rc.send("PING\r\n")
		rc.expect("PONG")
	})
}

func TestVerbose(t *testing.T) {
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":true}\r\n")
		rc.expect("+OK")
		rc.send("SUB v 1\r\n")
		rc.expect("+OK")
		rc.send("PUB v 1\r\nx\r\n")
		// The MSG and +OK may come in either order relative to each other
		// only if they are on different paths; here both are on this client.
		got := map[string]bool{rc.readLine(): true, rc.readLine(): true, rc.readLine(): true}
		if !got["+OK"] || !got["MSG v 1 1"] || !got["x"] {
			t.Fatalf("got %v", got)
		}
		rc.send("UNSUB 1\r\n")
		rc.expect("+OK")
	})
}

func TestInfo(t *testing.T) {
	eachTransport(t, loop.Options{MaxPayload: 2 << 20}, func(t *testing.T, s *loop.Server) {
		nc := connect(t, s)
		if nc.MaxPayload() != 2<<20 || !nc.HeadersSupported() {
			t.Fatalf("max payload %d headers %v", nc.MaxPayload(), nc.HeadersSupported())
		}
		raw := dialInfo(t, s)
		for _, k := range []string{"server_id", "server_name", "version", "proto", "host", "port", "max_payload", "headers", "client_id", "client_ip"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("INFO lacks %q: %v", k, raw)
			}
		}
		if raw["proto"].(float64) != 1 || raw["client_ip"] != "127.0.0.1" {
			t.Errorf("INFO %v", raw)
		}
	})
}

func dialInfo(t *testing.T, s *loop.Server) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimPrefix(dialRawKeep(t, s), "INFO ")), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTraceLogsProtocolAndRedactsSecrets(t *testing.T) {
	looptest.Each(t, loop.Options{Trace: true, Token: "hunter2"}, func(t *testing.T, o loop.Options) {
		logs := &looptest.LogBuffer{}
		o.LogWriter = logs
		s := startServer(t, o)
		rc := dialRaw(t, s)
		rc.send("CONNECT {\"verbose\":false,\"auth_token\":\"hunter2\"}\r\nSUB trace.me 5\r\nPING\r\n")
		rc.expect("PONG")
		out := logs.String()
		for _, want := range []string{"<<- SUB trace.me  5", "<<- PING", `"auth_token":"[REDACTED]"`} {
			if !strings.Contains(out, want) {
				t.Errorf("trace lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "hunter2") {
			t.Errorf("trace leaks the token:\n%s", out)
		}
	})
}

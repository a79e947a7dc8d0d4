package main

import (
	"flag"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

// parseTLSFlags parses args and applies the TLS flags to o.
func parseTLSFlags(t *testing.T, o *loop.Options, args ...string) error {
	t.Helper()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	var tf tlsFlags
	fs.BoolVar(&tf.on, "tls", false, "")
	fs.StringVar(&tf.cert, "tlscert", "", "")
	fs.StringVar(&tf.key, "tlskey", "", "")
	fs.StringVar(&tf.ca, "tlscacert", "", "")
	fs.BoolVar(&tf.verify, "tlsverify", false, "")
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return tf.apply(o, set)
}

// TestTLSFlags: the --tls* flags as nats-server takes them.
func TestTLSFlags(t *testing.T) {
	var o loop.Options
	if err := parseTLSFlags(t, &o, "--tls", "--tlscert", "c.pem", "--tlskey", "k.pem"); err != nil {
		t.Fatal(err)
	}
	if o.TLS == nil || o.TLS.CertFile != "c.pem" || o.TLS.KeyFile != "k.pem" || o.TLS.Verify {
		t.Fatalf("%+v", o.TLS)
	}

	// --tlsverify alone turns TLS on; the file's timeout stays.
	o = loop.Options{TLS: &loop.TLSOptions{CertFile: "f.pem", Timeout: 5 * time.Second, HandshakeFirst: true}}
	if err := parseTLSFlags(t, &o, "--tlsverify", "--tlscert", "c.pem", "--tlskey", "k.pem", "--tlscacert", "ca.pem"); err != nil {
		t.Fatal(err)
	}
	if want := (loop.TLSOptions{CertFile: "c.pem", KeyFile: "k.pem", CAFile: "ca.pem", Verify: true, Timeout: 5 * time.Second, HandshakeFirst: true}); o.TLS == nil || o.TLS.CertFile != want.CertFile ||
		o.TLS.KeyFile != want.KeyFile || o.TLS.CAFile != want.CAFile || !o.TLS.Verify || o.TLS.Timeout != want.Timeout || !o.TLS.HandshakeFirst {
		t.Fatalf("%+v, want %+v", o.TLS, want)
	}

	// --tls=false turns off what the file configured.
	if err := parseTLSFlags(t, &o, "--tls=false"); err != nil || o.TLS != nil {
		t.Fatalf("--tls=false: %v, %+v", err, o.TLS)
	}
	// No flag: the file's settings stand.
	o = loop.Options{TLS: &loop.TLSOptions{CertFile: "f.pem"}}
	if err := parseTLSFlags(t, &o); err != nil || o.TLS.CertFile != "f.pem" {
		t.Fatalf("%v, %+v", err, o.TLS)
	}
	// A certificate without its key is refused.
	if err := parseTLSFlags(t, &loop.Options{}, "--tls", "--tlscert", "c.pem"); err == nil {
		t.Fatal("--tlscert without --tlskey accepted")
	}
}

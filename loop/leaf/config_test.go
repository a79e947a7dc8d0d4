package leaf_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

func applyConf(t *testing.T, text string) (*loop.Options, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "leaf.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	o := &loop.Options{}
	return o, loop.ApplyConfigFile(o, path)
}

// TestLeafConfig: leafnodes { remotes, reconnect } as nats-server spells
// them, and clear errors for what the leaf does not do yet.
func TestLeafConfig(t *testing.T) {
	o, err := applyConf(t, `
leafnodes {
  listen: "127.0.0.1:7433"
  compression: s2_fast
  authorization { user: site, password: pw, timeout: 3 }
  reconnect: "250ms"
  remotes = [
    { url: "nats-leaf://edge:pw@hub1:7422", account: "$G", deny_imports: ["a.>"], deny_exports: "b" }
    { urls: ["nats-leaf://hub2:7422", "nats://hub3:7422"], credentials: "/etc/edge.creds", first_info_timeout: "3s" }
    { url: "tls://hub4:7422", tls { ca_file: "/etc/ca.pem", cert_file: "/etc/leaf.pem", key_file: "/etc/leaf-key.pem" } }
  ]
}`)
	if err != nil {
		t.Fatal(err)
	}
	if o.LeafReconnect != 250*time.Millisecond || len(o.LeafRemotes) != 3 || o.LeafHost != "127.0.0.1" || o.LeafPort != 7433 ||
		o.LeafUsername != "site" || o.LeafPassword != "pw" || o.LeafAuthTimeout != 3*time.Second || o.LeafCompression != "s2_fast" {
		t.Fatalf("got %+v", o)
	}
	if r := o.LeafRemotes[0]; len(r.URLs) != 1 || r.URLs[0] != "nats-leaf://edge:pw@hub1:7422" || r.Account != "$G" ||
		len(r.DenyImports) != 1 || r.DenyImports[0] != "a.>" || len(r.DenyExports) != 1 || r.DenyExports[0] != "b" {
		t.Fatalf("remote 0: %+v", r)
	}
	if r := o.LeafRemotes[1]; len(r.URLs) != 2 || r.Credentials != "/etc/edge.creds" || r.FirstInfoTimeout != 3*time.Second {
		t.Fatalf("remote 1: %+v", r)
	}
	if r := o.LeafRemotes[2]; r.TLS == nil || r.TLS.CAFile != "/etc/ca.pem" || r.TLS.CertFile != "/etc/leaf.pem" {
		t.Fatalf("remote 2: %+v", r)
	}

	// The README's edge example.
	o, err = applyConf(t, `
server_name: site-berlin
port: 4222
leafnodes {
  reconnect: "2s"            # first retry delay; doubles to 30s, with jitter
  remotes = [
    { urls: ["nats-leaf://edge:s3cret@hub1.example:7422",
             "nats-leaf://edge:s3cret@hub2.example:7422"] }
  ]
}`)
	if err != nil || len(o.LeafRemotes) != 1 || len(o.LeafRemotes[0].URLs) != 2 || o.LeafReconnect != 2*time.Second {
		t.Fatalf("README example: %v %+v", err, o)
	}

	o, err = applyConf(t, `leafnodes { port: 7422, authorization { user: l, password: p, account: B } }`)
	if err != nil || o.LeafAccount != "B" || o.LeafUsername != "l" {
		t.Fatalf("authorization account: %v %+v", err, o)
	}
	// The README's JetStream domain and two-account site examples.
	o, err = applyConf(t, `
jetstream { store_dir: "/var/lib/evnats", domain: berlin }
accounts {
  FACTORY { users: [ { user: plc, password: p1 } ] }
  OFFICE  { users: [ { user: desk, password: p2 } ] }
}
leafnodes {
  remotes = [
    { url: "nats-leaf://factory:s3cret@hub1.example:7422", account: FACTORY }
    { url: "nats-leaf://office:s3cret@hub1.example:7422",  account: OFFICE }
  ]
}`)
	if err != nil || o.JetStreamDomain != "berlin" || len(o.LeafRemotes) != 2 || o.LeafRemotes[1].Account != "OFFICE" {
		t.Fatalf("README domain/accounts example: %v %+v", err, o)
	}
	if _, err := applyConf(t, `jetstream { domain: "a.b" }`); err == nil || !strings.Contains(err.Error(), "want one subject token") {
		t.Errorf("domain a.b: %v", err)
	}

	// An account that does not exist stops the server starting.
	for _, bad := range []loop.Options{
		{LeafRemotes: []loop.LeafRemote{{URLs: []string{"nats-leaf://127.0.0.1:1"}, Account: "NOPE"}}},
		{LeafPort: -1, LeafUsername: "l", LeafPassword: "p", LeafAccount: "NOPE"},
	} {
		bad.Port, bad.LogWriter = -1, io.Discard
		s, err := loop.New(bad)
		if err == nil {
			if err = s.Start(); err == nil {
				s.Shutdown()
			}
		}
		if err == nil || !strings.Contains(err.Error(), `cannot find local account "NOPE" specified in leafnode`) {
			t.Errorf("%+v: %v", bad, err)
		}
	}

	for _, c := range []struct{ conf, want string }{
		{`leafnodes { remotes = [ { url: "ws://hub:443", ws_compression: true } ] }`, `"leafnodes.remotes.ws_compression": nats-server feature not supported`},
		{`leafnodes { remotes = [ { url: "tls://hub:7422", tls { ca_flie: "ca.pem" } } ] }`, `unsupported key "ca_flie"`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", account: "A B" } ] }`, `account name`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", compression: s2_turbo } ] }`, `compression "s2_turbo": want off, accept`},
		{`leafnodes { remotes = [ { url: "ftp://hub" } ] }`, `unknown scheme "ftp"`},
		{`leafnodes { remotes = [ { account: "$G" } ] }`, "url or urls is required"},
		{`leafnodes { port: 7422, tls { cert_flie: "a" } }`, `unsupported key "cert_flie"`},
		{`leafnodes { port: 7422, authorization { users: 5 } }`, `Expected users field to be an array, got 5`},
		{`leafnodes { port: 7422, authorization { users: [ x ] } }`, `Expected user entry to be a map/struct, got x`},
		{`leafnodes { port: 7422, authorization { users: [ { user: a, pasword: b } ] } }`, `unknown key "leafnodes.authorization.users.pasword", did you mean "password"?`},
		{`leafnodes { port: 7422, authorization { nkey: "UNOTAKEY" } }`, `Not a valid public nkey for leafnode authorization`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", nkey: "SUNOTASEED" } ] }`, `Remote leafnode nkey is not a valid seed: "SUNOTASEED"`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", credentials: "a.creds", nkey: "` + userSeed + `" } ] }`, `Remote leafnode can not have both creds and nkey defined`},
		{`leafnodes { port: 7422, authorization { token: x } }`, `"leafnodes.authorization.token": nats-server feature not supported by evnats yet`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", hub: true } ] }`, `"leafnodes.remotes.hub": nats-server feature not supported`},
		{`leafnodes { remotes = [ { url: "nats-leaf://hub:7422", deny_imports: ["a..b"] } ] }`, `invalid subject "a..b"`},
	} {
		_, err := applyConf(t, c.conf)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s", c.conf, err, c.want)
		}
	}
}

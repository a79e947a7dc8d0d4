package loop_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// opSetup is an nsc-style setup built with the jwt package: an operator,
// accounts A (exporting a stream), B (importing it) and SYS, their JWTs.
type opSetup struct {
	op         nkeys.KeyPair
	opJWT      string
	a, b, sys  nkeys.KeyPair
	aPub, bPub string
	sysPub     string
	aClaims    *jwt.AccountClaims
	jwts       map[string]string
}

func newOpSetup(t *testing.T) *opSetup {
	t.Helper()
	s := &opSetup{jwts: map[string]string{}}
	s.op, _ = nkeys.CreateOperator()
	opPub, _ := s.op.PublicKey()
	var err error
	if s.opJWT, err = jwt.NewOperatorClaims(opPub).Encode(s.op); err != nil {
		t.Fatal(err)
	}
	s.a, _ = nkeys.CreateAccount()
	s.b, _ = nkeys.CreateAccount()
	s.sys, _ = nkeys.CreateAccount()
	s.aPub, _ = s.a.PublicKey()
	s.bPub, _ = s.b.PublicKey()
	s.sysPub, _ = s.sys.PublicKey()
	s.aClaims = jwt.NewAccountClaims(s.aPub)
	s.aClaims.Exports.Add(&jwt.Export{Subject: "events.>", Type: jwt.Stream})
	s.aClaims.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: 2}
	bc := jwt.NewAccountClaims(s.bPub)
	bc.Imports.Add(&jwt.Import{Account: s.aPub, Subject: "events.>", LocalSubject: "a.events.>", Type: jwt.Stream})
	s.sign(t, s.aClaims)
	s.sign(t, bc)
	s.sign(t, jwt.NewAccountClaims(s.sysPub))
	return s
}

func (s *opSetup) sign(t *testing.T, ac *jwt.AccountClaims) {
	t.Helper()
	tok, err := ac.Encode(s.op)
	if err != nil {
		t.Fatal(err)
	}
	s.jwts[ac.Subject] = tok
}

func (s *opSetup) conf() string {
	var b strings.Builder
	b.WriteString("jetstream: enabled\noperator: " + s.opJWT + "\nresolver: MEMORY\nsystem_account: " + s.sysPub + "\nresolver_preload {\n")
	for k, v := range s.jwts {
		b.WriteString("  " + k + ": " + v + "\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// creds writes a .creds file for a new user of the account signed by
// issuer, edited by edit.
func creds(t *testing.T, issuer nkeys.KeyPair, edit func(*jwt.UserClaims)) (string, nkeys.KeyPair) {
	t.Helper()
	u, _ := nkeys.CreateUser()
	pub, _ := u.PublicKey()
	uc := jwt.NewUserClaims(pub)
	if edit != nil {
		edit(uc)
	}
	tok, err := uc.Encode(issuer)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := u.Seed()
	b, err := jwt.FormatUserConfig(tok, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, u
}

func wantAuthViolation(t *testing.T, s *loop.Server, what string, opts ...nats.Option) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), append([]nats.Option{nats.NoReconnect()}, opts...)...)
	if err == nil {
		nc.Close()
		t.Fatalf("%s: admitted", what)
	}
	if !strings.Contains(err.Error(), "Authorization Violation") {
		t.Fatalf("%s: %v, want Authorization Violation", what, err)
	}
}

// TestOperatorMode: operator mode with a memory resolver: users log in
// with .creds files into the account that signed them, accounts are
// isolated and import from each other as their JWTs say, user JWT
// permissions hold; a forged JWT, a nonce signed by another key, an
// expired JWT and an unknown account are refused with Authorization
// Violation; a JWT that expires while connected is closed with User
// Authentication Expired; a reload that revokes a user disconnects it.
func TestOperatorMode(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		r := startFromFile(t, o, op.conf())
		s := r.s
		ca, _ := creds(t, op.a, nil)
		cb, _ := creds(t, op.b, nil)
		climited, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.Pub.Allow.Add("events.>") })
		a := connect(t, s, nats.UserCredentials(ca))
		b := connect(t, s, nats.UserCredentials(cb))
		sa, _ := a.SubscribeSync(">")
		sb, _ := b.SubscribeSync(">")
		a.Flush()
		b.Flush()
		b.Publish("private", nil)
		nextMsg(t, sb)
		noMsg(t, a, sa)
		a.Publish("events.x", []byte("e"))
		nextMsg(t, sa)
		if m := nextMsg(t, sb); m.Subject != "a.events.x" {
			t.Fatalf("B got %q", m.Subject)
		}
		// JetStream from the account JWT's limits: A has it (2 streams at
		// most), B has none.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ja, _ := jetstream.New(a)
		for i, name := range []string{"S1", "S2", "S3"} {
			_, err := ja.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"js." + name}})
			var apiErr *jetstream.APIError
			if i < 2 && err != nil || i == 2 && (!errors.As(err, &apiErr) || apiErr.ErrorCode != 10027) {
				t.Fatalf("stream %s in A: %v", name, err)
			}
		}
		jb, _ := jetstream.New(b)
		// nats.go retries a 503 until its context ends: a short one.
		short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := jb.AccountInfo(short)
		cancelShort()
		if err == nil {
			t.Fatal("B has JetStream without limits in its JWT")
		}
		errs := newAsyncErrs()
		lim := connect(t, s, nats.UserCredentials(climited), nats.ErrorHandler(errs.handler))
		lim.Publish("other", nil)
		lim.Flush()
		errs.waitFor(t, "permissions violation for publish")

		// Refusals.
		stranger, _ := nkeys.CreateAccount()
		forged, _ := creds(t, stranger, nil)
		wantAuthViolation(t, s, "JWT of an unknown account", nats.UserCredentials(forged))
		expired, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(-time.Minute).Unix() })
		wantAuthViolation(t, s, "expired JWT", nats.UserCredentials(expired))
		other, _ := nkeys.CreateUser()
		tok := jwtOf(t, ca)
		wantAuthViolation(t, s, "nonce signed by another key", nats.UserJWT(
			func() (string, error) { return tok, nil },
			func(nonce []byte) ([]byte, error) { return other.Sign(nonce) }))
		wantAuthViolation(t, s, "no JWT", nats.UserInfo("a", "a"))

		// Expiry while connected.
		soon, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.Expires = time.Now().Add(2 * time.Second).Unix() })
		closed := make(chan struct{})
		connect(t, s, nats.UserCredentials(soon), nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatal("expired user still connected")
		}

		// Revocation by reload.
		revoked := make(chan struct{})
		cr, ukp := creds(t, op.a, nil)
		connect(t, s, nats.UserCredentials(cr), nats.ClosedHandler(func(*nats.Conn) { close(revoked) }))
		upub, _ := ukp.PublicKey()
		op.aClaims.Revoke(upub)
		op.sign(t, op.aClaims)
		if err := r.rewrite(t, op.conf()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-revoked:
		case <-time.After(5 * time.Second):
			t.Fatal("revoked user still connected")
		}
		wantAuthViolation(t, s, "revoked user", nats.UserCredentials(cr))
		if !a.IsConnected() {
			t.Fatal("a dropped by the reload")
		}
	})
}

func jwtOf(t *testing.T, credsPath string) string {
	t.Helper()
	b, err := os.ReadFile(credsPath)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestOperatorConfigRefused: an account JWT signed by a key the operator
// does not trust, one preloaded under another key, and users next to an
// operator are refused at start.
func TestOperatorConfigRefused(t *testing.T) {
	op := newOpSetup(t)
	rogue, _ := nkeys.CreateOperator()
	ac := jwt.NewAccountClaims(op.aPub)
	bad, _ := ac.Encode(rogue)
	for _, tc := range []struct{ conf, want string }{
		{"operator: " + op.opJWT + "\nresolver: MEMORY\nresolver_preload { " + op.aPub + ": " + bad + " }\n", "not signed by a trusted operator"},
		{"operator: " + op.opJWT + "\nresolver: MEMORY\nresolver_preload { " + op.bPub + ": " + op.jwts[op.aPub] + " }\n", "the JWT is account"},
		{"operator: " + op.opJWT + "\nresolver: MEMORY\nauthorization { users = [ {user: x, password: y} ] }\n", "cannot be used with an operator"},
		{"operator: " + op.opJWT + "\n", "needs a resolver"},
		{"operator: not-a-jwt-file\n", "not-a-jwt-file"},
	} {
		o := loop.Options{}
		err := loop.ApplyConfigFile(&o, writeConf(t, tc.conf))
		if err == nil {
			_, err = loop.New(o)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%.60s...: %v, want %q", tc.conf, err, tc.want)
		}
	}
}

// TestOperatorDirResolver: with the full directory resolver, a system
// user pushes account JWTs over $SYS.REQ.CLAIMS.UPDATE and
// $SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE: a new account's users log in, a
// revocation disconnects the user, a JWT signed by an untrusted operator
// is refused with nats-server's error shape, and what was pushed is in
// the directory after a restart.
func TestOperatorDirResolver(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		dir := t.TempDir()
		conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\"}", 1)
		conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
		r := startFromFile(t, o, conf)
		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, r.s, nats.UserCredentials(sysCreds))
		push := func(subject, tok string) map[string]any {
			t.Helper()
			m, err := sys.Request(subject, []byte(tok), 5*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", subject, err)
			}
			var resp map[string]any
			if err := json.Unmarshal(m.Data, &resp); err != nil {
				t.Fatal(err)
			}
			return resp
		}
		// A new account, pushed.
		c, _ := nkeys.CreateAccount()
		cPub, _ := c.PublicKey()
		cc, _ := creds(t, c, nil)
		wantAuthViolation(t, r.s, "user of an account not yet pushed", nats.UserCredentials(cc))
		ctok, _ := jwt.NewAccountClaims(cPub).Encode(op.op)
		if resp := push("$SYS.REQ.CLAIMS.UPDATE", ctok); resp["data"] == nil {
			t.Fatalf("push: %v", resp)
		}
		connect(t, r.s, nats.UserCredentials(cc))
		// A revocation, pushed for A.
		cr, ukp := creds(t, op.a, nil)
		revoked := make(chan struct{})
		connect(t, r.s, nats.UserCredentials(cr), nats.ClosedHandler(func(*nats.Conn) { close(revoked) }))
		upub, _ := ukp.PublicKey()
		op.aClaims.Revoke(upub)
		op.sign(t, op.aClaims)
		if resp := push("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.UPDATE", op.jwts[op.aPub]); resp["data"] == nil {
			t.Fatalf("push A: %v", resp)
		}
		select {
		case <-revoked:
		case <-time.After(5 * time.Second):
			t.Fatal("revoked user still connected")
		}
		// An untrusted signer.
		rogue, _ := nkeys.CreateOperator()
		bad, _ := jwt.NewAccountClaims(cPub).Encode(rogue)
		resp := push("$SYS.REQ.CLAIMS.UPDATE", bad)
		e, _ := resp["error"].(map[string]any)
		if e == nil || !strings.Contains(e["description"].(string), "jwt update resulted in error") {
			t.Fatalf("rogue push: %v", resp)
		}
		// Restart: the pushed accounts are read back from the directory.
		if _, err := os.Stat(filepath.Join(dir, cPub+".jwt")); err != nil {
			t.Fatal(err)
		}
		r.s.Shutdown()
		r.s = looptest.Start(t, r.load(t))
		connect(t, r.s, nats.UserCredentials(cc))
		wantAuthViolation(t, r.s, "revoked user after restart", nats.UserCredentials(cr))
	})
}

// TestAuthHostileConnect: garbage in the nkey, sig and jwt fields of
// CONNECT gets -ERR 'Authorization Violation' and a close, exactly, and
// the server keeps serving.
func TestAuthHostileConnect(t *testing.T) {
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	op := newOpSetup(t)
	for _, tc := range []struct{ name, conf string }{
		{"nkeys", `accounts { A { users = [ {nkey: ` + pub + `} ] } }`},
		{"operator", strings.Replace(op.conf(), "jetstream: enabled\n", "", 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startFromFile(t, loop.Options{}, tc.conf).s
			for _, connect := range []string{
				`{"nkey":"garbage","sig":"!!!"}`,
				`{"nkey":"` + pub + `","sig":"` + strings.Repeat("A", 3000) + `"}`,
				`{"nkey":"` + pub + `"}`,
				`{"jwt":"eyJ.eyJ.sig","sig":"x"}`,
				`{"jwt":"` + strings.Repeat("e", 3000) + `","nkey":"` + pub + `","sig":""}`,
				`{"user":"a","pass":"a","jwt":"a.b.c"}`,
			} {
				rc := dialRaw(t, s)
				rc.send("CONNECT %s\r\nPING\r\n", connect)
				rc.expect("-ERR 'Authorization Violation'")
				rc.expectClosed()
			}
			// Still serving: a signed login works (nkeys case).
			if tc.name == "nkeys" {
				connect(t, s, nats.Nkey(pub, func(n []byte) ([]byte, error) { return kp.Sign(n) }))
			}
		})
	}
}

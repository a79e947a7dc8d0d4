package loop_test

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestOperatorHostileUserJWT: what a user JWT may not grant itself, and
// when it may not log in, as nats-server refuses: a user issued by a
// scoped signing key gets the scope's permissions and may not carry its
// own; a JWT not valid yet (nbf), one restricted to other source
// networks or connection types, and a user of an account whose JWT has
// expired are refused with Authorization Violation.
func TestOperatorHostileUserJWT(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		// Account C: a scoped signing key whose users may publish only
		// scoped.>; account E: its JWT expires in 5 s.
		ckp, _ := nkeys.CreateAccount()
		cPub, _ := ckp.PublicKey()
		skp, _ := nkeys.CreateAccount()
		sPub, _ := skp.PublicKey()
		cc := jwt.NewAccountClaims(cPub)
		scope := jwt.NewUserScope()
		scope.Key = sPub
		scope.Template.Pub.Allow.Add("scoped.>")
		cc.SigningKeys.AddScopedSigner(scope)
		op.sign(t, cc)
		ekp, _ := nkeys.CreateAccount()
		ePub, _ := ekp.PublicKey()
		ec := jwt.NewAccountClaims(ePub)
		ec.Expires = time.Now().Add(5 * time.Second).Unix()
		op.sign(t, ec)
		r := startFromFile(t, o, op.conf())
		s := r.s

		scoped, _ := creds(t, skp, func(uc *jwt.UserClaims) {
			uc.IssuerAccount = cPub
			uc.UserPermissionLimits = jwt.UserPermissionLimits{} // as nsc makes a scoped user
		})
		errs := newAsyncErrs()
		nc := connect(t, s, nats.UserCredentials(scoped), nats.ErrorHandler(errs.handler))
		nc.Publish("other", nil)
		nc.Flush()
		errs.waitFor(t, "permissions violation for publish")
		wide, _ := creds(t, skp, func(uc *jwt.UserClaims) {
			uc.IssuerAccount = cPub
			uc.Pub.Allow.Add(">")
		})
		wantAuthViolation(t, s, "scoped user with its own permissions", nats.UserCredentials(wide))

		early, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.NotBefore = time.Now().Add(time.Hour).Unix() })
		wantAuthViolation(t, s, "JWT not valid yet", nats.UserCredentials(early))
		far, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.Src.Add("10.0.0.0/8") })
		wantAuthViolation(t, s, "JWT for another source network", nats.UserCredentials(far))
		near, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.Src.Add("10.0.0.0/8", "127.0.0.0/8") })
		connect(t, s, nats.UserCredentials(near))
		wsOnly, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeWebsocket) })
		wantAuthViolation(t, s, "JWT for websocket only", nats.UserCredentials(wsOnly))
		std, _ := creds(t, op.a, func(uc *jwt.UserClaims) { uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeStandard) })
		connect(t, s, nats.UserCredentials(std))

		// Connect times: a window that does not hold now is refused, one
		// that does (running past midnight) is not.
		now := time.Now().UTC()
		hms := func(t time.Time) string { return t.Format("15:04:05") }
		closedWin, _ := creds(t, op.a, func(uc *jwt.UserClaims) {
			uc.Locale = "UTC"
			uc.Times = []jwt.TimeRange{{Start: hms(now.Add(2 * time.Hour)), End: hms(now.Add(3 * time.Hour))}}
		})
		wantAuthViolation(t, s, "JWT outside its connect times", nats.UserCredentials(closedWin))
		openWin, _ := creds(t, op.a, func(uc *jwt.UserClaims) {
			uc.Locale = "UTC"
			uc.Times = []jwt.TimeRange{{Start: hms(now.Add(-time.Hour)), End: hms(now.Add(time.Hour))}}
		})
		connect(t, s, nats.UserCredentials(openWin))

		// Connected users are closed when their account's JWT expires or
		// their connect time range ends.
		eu, _ := creds(t, ekp, nil)
		gone := make(chan struct{}, 2)
		closedOn := func() nats.Option { return nats.ClosedHandler(func(*nats.Conn) { gone <- struct{}{} }) }
		connect(t, s, nats.UserCredentials(eu), closedOn())
		ending, _ := creds(t, op.a, func(uc *jwt.UserClaims) {
			uc.Locale = "UTC"
			uc.Times = []jwt.TimeRange{{Start: hms(now.Add(-time.Hour)), End: hms(time.Now().UTC().Add(3 * time.Second))}}
		})
		connect(t, s, nats.UserCredentials(ending), closedOn())
		for i := 0; i < 2; i++ {
			select {
			case <-gone:
			case <-time.After(15 * time.Second):
				t.Fatal("user still connected past its account's expiry or its connect time range")
			}
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect(), nats.UserCredentials(eu))
			if err != nil {
				break
			}
			nc.Close()
			if time.Now().After(deadline) {
				t.Fatal("user of an expired account still admitted")
			}
			time.Sleep(200 * time.Millisecond)
		}
		wantAuthViolation(t, s, "user of an expired account", nats.UserCredentials(eu))
	})
}

// TestOperatorDirResolverHostile: what is in the resolver directory
// cannot keep the server from starting (an account JWT that has expired
// since it was written, a damaged file, one under another account's
// name: skipped), and a pushed claims update that is expired or that the
// accounts cannot take (an import nobody exports) is refused and leaves
// the directory as it was.
func TestOperatorDirResolverHostile(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		dir := t.TempDir()
		ekp, _ := nkeys.CreateAccount()
		ePub, _ := ekp.PublicKey()
		ec := jwt.NewAccountClaims(ePub)
		ec.Expires = time.Now().Add(-time.Minute).Unix()
		etok, _ := ec.Encode(op.op)
		dkp, _ := nkeys.CreateAccount()
		dPub, _ := dkp.PublicKey()
		for name, body := range map[string]string{ePub: etok, dPub: "garbage", op.bPub: op.jwts[op.aPub]} {
			if err := os.WriteFile(filepath.Join(dir, name+".jwt"), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\"}", 1)
		conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
		r := startFromFile(t, o, conf)
		eu, _ := creds(t, ekp, nil)
		wantAuthViolation(t, r.s, "user of an expired account", nats.UserCredentials(eu))
		ca, _ := creds(t, op.a, nil)
		connect(t, r.s, nats.UserCredentials(ca))

		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, r.s, nats.UserCredentials(sysCreds))
		refused := func(what, tok string) {
			t.Helper()
			m, err := sys.Request("$SYS.REQ.CLAIMS.UPDATE", []byte(tok), 5*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if !strings.Contains(string(m.Data), `"error"`) {
				t.Fatalf("%s: %s", what, m.Data)
			}
		}
		xkp, _ := nkeys.CreateAccount()
		xPub, _ := xkp.PublicKey()
		xc := jwt.NewAccountClaims(xPub)
		xc.Expires = time.Now().Add(-time.Minute).Unix()
		xtok, _ := xc.Encode(op.op)
		refused("expired account JWT", xtok)
		yc := jwt.NewAccountClaims(xPub)
		yc.Imports.Add(&jwt.Import{Account: op.aPub, Subject: "private.>", Type: jwt.Stream})
		ytok, _ := yc.Encode(op.op)
		refused("import nobody exports", ytok)
		if _, err := os.Stat(filepath.Join(dir, xPub+".jwt")); !os.IsNotExist(err) {
			t.Fatalf("refused update left in the directory: %v", err)
		}
		r.s.Shutdown()
		r.s = looptest.Start(t, r.load(t))
		connect(t, r.s, nats.UserCredentials(ca))
	})
}

// TestOperatorTokenRequiredExport: an export that requires a token is
// imported only with an activation JWT its exporter issued to the
// importing account: without one the import is left out (no responders);
// an account JWT carrying one issued to another account fails the jwt
// package's validation, so, as in nats-server, that account is not
// loaded and its users cannot log in.
func TestOperatorTokenRequiredExport(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		acct := func() (nkeys.KeyPair, string) {
			kp, _ := nkeys.CreateAccount()
			pub, _ := kp.PublicKey()
			return kp, pub
		}
		pkp, pPub := acct()
		pc := jwt.NewAccountClaims(pPub)
		pc.Exports.Add(&jwt.Export{Subject: "priv.>", Type: jwt.Service, TokenReq: true})
		op.sign(t, pc)
		activation := func(to string) string {
			ac := jwt.NewActivationClaims(to)
			ac.ImportSubject = "priv.>"
			ac.ImportType = jwt.Service
			tok, err := ac.Encode(pkp)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		importer := func(token func(pub string) string) nkeys.KeyPair {
			kp, pub := acct()
			c := jwt.NewAccountClaims(pub)
			c.Imports.Add(&jwt.Import{Account: pPub, Subject: "priv.>", Type: jwt.Service, Token: token(pub)})
			op.sign(t, c)
			return kp
		}
		_, otherPub := acct()
		none := importer(func(string) string { return "" })
		good := importer(activation)
		stolen := importer(func(string) string { return activation(otherPub) })
		r := startFromFile(t, o, op.conf())
		pcreds, _ := creds(t, pkp, nil)
		p := connect(t, r.s, nats.UserCredentials(pcreds))
		p.Subscribe("priv.x", func(m *nats.Msg) { m.Respond([]byte("secret")) })
		p.Flush()
		for _, tc := range []struct {
			what string
			kp   nkeys.KeyPair
			ok   bool
		}{{"no token", none, false}, {"its token", good, true}} {
			cr, _ := creds(t, tc.kp, nil)
			nc := connect(t, r.s, nats.UserCredentials(cr))
			m, err := nc.Request("priv.x", nil, 2*time.Second)
			if tc.ok && (err != nil || string(m.Data) != "secret") || !tc.ok && !errors.Is(err, nats.ErrNoResponders) {
				t.Fatalf("%s: %v %v", tc.what, m, err)
			}
		}
		cr, _ := creds(t, stolen, nil)
		wantAuthViolation(t, r.s, "an account with another account's activation", nats.UserCredentials(cr))
	})
}

// TestOperatorSrcIgnoresForwardedFor: a user JWT's src networks hold for
// the TCP peer: a websocket client claiming an allowed address in
// X-Forwarded-For is still refused, as nats-server.
func TestOperatorSrcIgnoresForwardedFor(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		o.Websocket = wsOpts().Websocket
		r := startFromFile(t, o, op.conf())
		c := wsDial(t, r.s)
		req := strings.Replace(wsGoodRequest, "\r\n\r\n", "\r\nX-Forwarded-For: 10.1.2.3\r\n\r\n", 1)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		_, info := readFrame(t, br)
		var in struct {
			Nonce string `json:"nonce"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(string(info)), "INFO ")), &in); err != nil || in.Nonce == "" {
			t.Fatalf("INFO %q: %v", info, err)
		}
		u, _ := nkeys.CreateUser()
		upub, _ := u.PublicKey()
		uc := jwt.NewUserClaims(upub)
		uc.Src.Add("10.0.0.0/8")
		tok, err := uc.Encode(op.a)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := u.Sign([]byte(in.Nonce))
		connect := `CONNECT {"verbose":false,"jwt":"` + tok + `","sig":"` + base64.RawURLEncoding.EncodeToString(sig) + `"}` + "\r\nPING\r\n"
		c.Write(wsFrame(0x82, []byte(connect), []byte{1, 2, 3, 4}))
		_, got := readFrame(t, br)
		if !strings.HasPrefix(string(got), "-ERR 'Authorization Violation'") {
			t.Fatalf("spoofed X-Forwarded-For: %q", got)
		}
	})
}

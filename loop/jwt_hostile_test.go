package loop_test

import (
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
		// scoped.>; account E: its JWT expires in 2 s.
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
		ec.Expires = time.Now().Add(2 * time.Second).Unix()
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

		eu, _ := creds(t, ekp, nil)
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

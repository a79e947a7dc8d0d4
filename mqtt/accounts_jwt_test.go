package mqtt_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestMQTTAccountJWT: in operator mode an MQTT client logs in with a user
// JWT in the password field, as with nats-server: a bearer token's JWT
// (there is no nonce to sign) of account A puts it in A, where a nats.go
// client of A (with .creds) meets it and one of B does not. A JWT that is
// not a bearer token, or allows only STANDARD connections, is refused;
// another user's JWT cannot take over the session.
func TestMQTTAccountJWT(t *testing.T) {
	op, _ := nkeys.CreateOperator()
	opPub, _ := op.PublicKey()
	opJWT, err := jwt.NewOperatorClaims(opPub).Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	conf := "operator: " + opJWT + "\nresolver: MEMORY\nresolver_preload {\n"
	accs := map[string]nkeys.KeyPair{}
	for _, name := range []string{"A", "B", "SYS"} {
		kp, _ := nkeys.CreateAccount()
		pub, _ := kp.PublicKey()
		tok, err := jwt.NewAccountClaims(pub).Encode(op)
		if err != nil {
			t.Fatal(err)
		}
		accs[name] = kp
		conf += "  " + pub + ": " + tok + "\n"
	}
	sysPub, _ := accs["SYS"].PublicKey()
	conf += "}\nsystem_account: " + sysPub + "\n"
	path := filepath.Join(t.TempDir(), "op.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	user := func(acc string, edit func(*jwt.UserClaims)) (tok, credsPath string) {
		u, _ := nkeys.CreateUser()
		pub, _ := u.PublicKey()
		uc := jwt.NewUserClaims(pub)
		if edit != nil {
			edit(uc)
		}
		tok, err := uc.Encode(accs[acc])
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := u.Seed()
		b, _ := jwt.FormatUserConfig(tok, seed)
		credsPath = filepath.Join(t.TempDir(), "u.creds")
		if err := os.WriteFile(credsPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return tok, credsPath
	}
	bearer := func(uc *jwt.UserClaims) { uc.BearerToken = true }

	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	o.Host, o.Port = "127.0.0.1", -1
	s := startMQTT(t, o)
	withJWT := func(tok string) func(*paho.ClientOptions) {
		return func(o *paho.ClientOptions) { o.SetUsername("ignored").SetPassword(tok) }
	}
	aTok, _ := user("A", bearer)
	m := connectMQTT(t, s, "dev", withJWT(aTok))
	ch := subscribe(t, m, "t/#", 1)
	natsCreds := func(acc string) *nats.Conn {
		_, cp := user(acc, nil)
		nc, err := nats.Connect(s.ClientURL(), nats.UserCredentials(cp), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	na, nb := natsCreds("A"), natsCreds("B")
	sa, sb := natsSub(t, na, "t.>"), natsSub(t, nb, "t.>")
	nb.Publish("t.x", []byte("fromB"))
	nb.Flush()
	na.Publish("t.x", []byte("fromA"))
	expect(t, ch, "t/x", "fromA")
	wait(t, m.Publish("t/y", 1, false, "mqtt"))
	if msg, err := sa.NextMsg(5 * time.Second); err != nil || string(msg.Data) != "fromA" {
		t.Fatalf("A: %v %v", msg, err)
	}
	if msg, err := sa.NextMsg(5 * time.Second); err != nil || string(msg.Data) != "mqtt" {
		t.Fatalf("A: %v %v", msg, err)
	}
	if msg, err := sb.NextMsg(5 * time.Second); err != nil || string(msg.Data) != "fromB" {
		t.Fatalf("B: %v %v", msg, err)
	}
	if msg, err := sb.NextMsg(50 * time.Millisecond); err == nil {
		t.Fatalf("B got A's %q", msg.Data)
	}

	// Another user of A cannot take the client id's session over: each
	// user JWT's key is a user.
	other, _ := user("A", bearer)
	if err := tryConnect(t, s, "dev", withJWT(other)); err == nil {
		t.Fatal("another JWT user of A took over the session")
	}

	notBearer, _ := user("A", nil)
	standardOnly, _ := user("A", func(uc *jwt.UserClaims) {
		uc.BearerToken = true
		uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeStandard)
	})
	for name, tok := range map[string]string{"not a bearer token": notBearer, "STANDARD only": standardOnly, "garbage": "eyJ.x.y"} {
		if err := tryConnect(t, s, "bad", withJWT(tok)); err == nil {
			t.Fatalf("%s: admitted over MQTT", name)
		}
	}
}

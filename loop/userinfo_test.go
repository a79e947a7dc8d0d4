package loop_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

const userInfoConf = `
accounts {
  A {
    users = [
      {user: a, password: a, permissions: {publish: {allow: ["x.>", "$SYS.REQ.USER.INFO"]}, subscribe: {allow: "_INBOX.>", deny: "_INBOX.secret"}}}
      {user: free, password: free}
    ]
  }
}
`

// userInfo asks $SYS.REQ.USER.INFO and returns the answer without its
// server part (which names the server).
func userInfo(t *testing.T, nc *nats.Conn) map[string]any {
	t.Helper()
	m, err := nc.Request("$SYS.REQ.USER.INFO", nil, 5*time.Second)
	if err != nil {
		t.Fatalf("USER.INFO: %v", err)
	}
	var resp map[string]any
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		t.Fatal(err)
	}
	if resp["server"] == nil {
		t.Fatalf("USER.INFO without server: %s", m.Data)
	}
	delete(resp, "server")
	return resp
}

// TestUserInfoDifferential: $SYS.REQ.USER.INFO answers any user with its
// user name, account and permissions, as nats-server does (compared with
// an in-process nats-server on the same file); the connect INFO marks
// the account as not the system account.
func TestUserInfoDifferential(t *testing.T) {
	ns := startNatsServer(t, userInfoConf)
	ask := func(url string) []map[string]any {
		var out []map[string]any
		for _, u := range []string{"a", "free"} {
			nc, err := nats.Connect(url, nats.UserInfo(u, u), nats.NoReconnect())
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, userInfo(t, nc))
			if nc.IsSystemAccount() {
				t.Errorf("%s: connect INFO says system account", u)
			}
			nc.Close()
		}
		return out
	}
	want := ask(ns.ClientURL())
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, userInfoConf).s
		if got := ask(s.ClientURL()); !reflect.DeepEqual(got, want) {
			t.Errorf("nats-server: %v\nevnats:      %v", want, got)
		}
	})
}

// TestOperatorUserInfo: a JWT user's USER.INFO names its user and
// account JWTs (user_name, account_name) and the time until its JWT
// expires; a system user is told it is in the system account.
func TestOperatorUserInfo(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		op.aClaims.Name = "ACCOUNT-A"
		op.sign(t, op.aClaims)
		s := startFromFile(t, o, op.conf()).s
		path, ukp := creds(t, op.a, func(uc *jwt.UserClaims) {
			uc.Name = "alice"
			uc.Expires = time.Now().Add(time.Hour).Unix()
		})
		upub, _ := ukp.PublicKey()
		nc := connect(t, s, nats.UserCredentials(path))
		d, _ := userInfo(t, nc)["data"].(map[string]any)
		if d["user"] != upub || d["user_name"] != "alice" || d["account"] != op.aPub || d["account_name"] != "ACCOUNT-A" {
			t.Fatalf("USER.INFO %v", d)
		}
		if exp, _ := d["expires"].(float64); exp < float64(59*time.Minute) || exp > float64(time.Hour) {
			t.Fatalf("expires %v, want about an hour in nanoseconds", d["expires"])
		}
		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, s, nats.UserCredentials(sysCreds))
		if err := sys.Flush(); err != nil { // the INFO follows the first PONG
			t.Fatal(err)
		}
		if !sys.IsSystemAccount() {
			t.Fatal("system user: connect INFO does not say system account")
		}
	})
}

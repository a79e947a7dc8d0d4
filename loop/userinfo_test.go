package loop_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
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
	sortLists(resp)
	return resp
}

// sortLists sorts every list of strings in v: nats-server builds a
// permission list's order from a map, so it varies from run to run.
func sortLists(v any) {
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			sortLists(e)
		}
	case []any:
		for _, e := range x {
			sortLists(e)
		}
		sort.SliceStable(x, func(i, j int) bool {
			a, aok := x[i].(string)
			b, bok := x[j].(string)
			return aok && bok && a < b
		})
	}
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

// TestOperatorClaimsLookupListDelete: with the full directory resolver,
// $SYS.REQ.ACCOUNT.<acc>.CLAIMS.LOOKUP answers the account's JWT (empty
// for an unknown account), $SYS.REQ.CLAIMS.LIST every account, and
// $SYS.REQ.CLAIMS.DELETE, signed by the operator and allowed by
// allow_delete, removes accounts and disconnects their users; a delete
// of the system account, one signed by another key, or one without
// allow_delete is refused with nats-server's texts.
func TestOperatorClaimsLookupListDelete(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		dir := t.TempDir()
		conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\", allow_delete: true}", 1)
		conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
		r := startFromFile(t, o, conf)
		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, r.s, nats.UserCredentials(sysCreds))
		ask := func(subject string, body []byte) []byte {
			t.Helper()
			m, err := sys.Request(subject, body, 5*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", subject, err)
			}
			return m.Data
		}
		if got := string(ask("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.LOOKUP", nil)); got != op.jwts[op.aPub] {
			t.Fatalf("lookup A: %q", got)
		}
		unknown, _ := nkeys.CreateAccount()
		uPub, _ := unknown.PublicKey()
		if got := ask("$SYS.REQ.ACCOUNT."+uPub+".CLAIMS.LOOKUP", nil); len(got) != 0 {
			t.Fatalf("lookup of an unknown account: %q", got)
		}
		var list struct{ Data []string }
		if err := json.Unmarshal(ask("$SYS.REQ.CLAIMS.LIST", nil), &list); err != nil {
			t.Fatal(err)
		}
		sort.Strings(list.Data)
		want := []string{op.aPub, op.bPub, op.sysPub}
		sort.Strings(want)
		if !reflect.DeepEqual(list.Data, want) {
			t.Fatalf("list %v, want %v", list.Data, want)
		}
		// Push C (into the directory), log in as its user, delete it.
		c, _ := nkeys.CreateAccount()
		cPub, _ := c.PublicKey()
		ctok, _ := jwt.NewAccountClaims(cPub).Encode(op.op)
		if resp := string(ask("$SYS.REQ.CLAIMS.UPDATE", []byte(ctok))); !strings.Contains(resp, "jwt updated") {
			t.Fatalf("push C: %s", resp)
		}
		cc, _ := creds(t, c, nil)
		gone := make(chan struct{})
		connect(t, r.s, nats.UserCredentials(cc), nats.ClosedHandler(func(*nats.Conn) { close(gone) }))
		opPub, _ := op.op.PublicKey()
		del := func(signer nkeys.KeyPair, accs ...string) string {
			pub, _ := signer.PublicKey()
			gc := jwt.NewGenericClaims(pub)
			list := make([]any, len(accs))
			for i, a := range accs {
				list[i] = a
			}
			gc.Data["accounts"] = list
			tok, err := gc.Encode(signer)
			if err != nil {
				t.Fatal(err)
			}
			return string(ask("$SYS.REQ.CLAIMS.DELETE", []byte(tok)))
		}
		if resp := del(op.op, op.sysPub); !strings.Contains(resp, "delete accounts request by "+opPub+" failed - not allowed to delete system account") {
			t.Fatalf("delete of the system account: %s", resp)
		}
		rogue, _ := nkeys.CreateOperator()
		if resp := del(rogue, cPub); !strings.Contains(resp, "failed - not trusted") {
			t.Fatalf("delete by an untrusted key: %s", resp)
		}
		if resp := del(op.op, cPub); !strings.Contains(resp, `"message":"deleted 1 accounts"`) {
			t.Fatalf("delete C: %s", resp)
		}
		select {
		case <-gone:
		case <-time.After(5 * time.Second):
			t.Fatal("user of a deleted account still connected")
		}
		wantAuthViolation(t, r.s, "user of a deleted account", nats.UserCredentials(cc))
		if _, err := os.Stat(filepath.Join(dir, cPub+".jwt.deleted")); err != nil {
			t.Fatalf("deleted JWT not kept as .deleted: %v", err)
		}
		if got := ask("$SYS.REQ.ACCOUNT."+cPub+".CLAIMS.LOOKUP", nil); len(got) != 0 {
			t.Fatalf("lookup of a deleted account: %q", got)
		}
		// Without allow_delete.
		r.s.Shutdown()
		noDel := strings.Replace(conf, ", allow_delete: true", "", 1)
		s2 := startFromFile(t, o, noDel).s
		sys = connect(t, s2, nats.UserCredentials(sysCreds))
		if resp := del(op.op, op.aPub); !strings.Contains(resp, "delete must be enabled in server config") {
			t.Fatalf("delete without allow_delete: %s", resp)
		}
	})
}

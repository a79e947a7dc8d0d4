package leaf_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/nats-io/jwt/v2"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/evnats/evnats/loop"
)

// TestLeafCredentials: a hub in operator mode takes a leaf whose remote
// names a .creds file (the user's JWT, and its seed signing the hub's
// nonce); the link binds to the user's account there.
func TestLeafCredentials(t *testing.T) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	ojwt, err := oc.Encode(okp)
	must(err)
	oc, err = jwt.DecodeOperatorClaims(ojwt)
	must(err)
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	must(err)
	creds := func(name string) string {
		ukp, _ := nkeys.CreateUser()
		upub, _ := ukp.PublicKey()
		ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
		must(err)
		seed, _ := ukp.Seed()
		b, err := jwt.FormatUserConfig(ujwt, seed)
		must(err)
		p := filepath.Join(t.TempDir(), name+".creds")
		must(os.WriteFile(p, b, 0o600))
		return p
	}
	res := &natsserver.MemAccResolver{}
	must(res.Store(apub, ajwt))
	ho := hubOpts()
	ho.TrustedOperators = []*jwt.OperatorClaims{oc}
	ho.AccountResolver = res
	hub := startHub(t, ho)

	o := loop.Options{LeafRemotes: []loop.LeafRemote{{URLs: []string{leafURL(ho, "")}, Credentials: creds("edge")}}}
	leaf := startLeaf(t, o)
	waitFor(t, "the leaf on the hub", func() bool { return hub.NumLeafNodes() == 1 })

	hnc := connect(t, hubURL(hub), nats.UserCredentials(creds("app")))
	hsub, _ := hnc.SubscribeSync("acct.up")
	hnc.Flush()
	lnc := connect(t, leaf.ClientURL())
	lsub, _ := lnc.SubscribeSync("acct.down")
	lnc.Flush()
	acc, err := hub.LookupAccount(apub)
	must(err)
	waitFor(t, "leaf interest in the account", func() bool { return acc.Interest("acct.down") == 1 })
	waitFor(t, "hub interest at the leaf", func() bool {
		_, err := lnc.Request("acct.up", nil, 50e6)
		return err == nats.ErrTimeout
	})
	next(t, hsub)
	lnc.Publish("acct.up", []byte("u"))
	hnc.Publish("acct.down", []byte("d"))
	if m := next(t, hsub); string(m.Data) != "u" {
		t.Fatalf("hub got %q", m.Data)
	}
	if m := next(t, lsub); string(m.Data) != "d" {
		t.Fatalf("leaf got %q", m.Data)
	}
}

package loop_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
)

const mappingConf = `
mappings { "g.*": "gm.{{wildcard(1)}}" }
authorization { users = [ {user: g, password: g} ] }
accounts {
  A {
    users = [ {user: a, password: a} ]
    mappings {
      "orders.*.*": "routed.$2.{{wildcard(1)}}"
      "part.*": "p.{{partition(3,1)}}.{{wildcard(1)}}"
      "all.>": "every.>"
      "sl.*": "sl.{{splitFromLeft(1,2)}}"
      "sp.*": "{{split(1,-)}}.sp"
      "sr.*.*": "{{SliceFromRight(2,2)}}.{{left(1,1)}}.{{right(1,1)}}"
      "split": [ {destination: "s1", weight: 50%}, {destination: "s2", weight: 50} ]
      "some": [ {destination: "kept", weight: 30} ]
    }
  }
  B { users = [ {user: b, password: b} ] }
}
`

// TestAccountMappingsDifferential: mappings in an account (and the top
// level's, for $G) rewrite what its users publish as nats-server does
// (wildcards, partition, split and slice functions, '>', weighted splits, a weight under 100 that
// keeps the rest), compared with an in-process nats-server on the same
// file; nothing a mapping rewrites reaches another account.
func TestAccountMappingsDifferential(t *testing.T) {
	ns := startNatsServer(t, mappingConf)
	want := mappingScenario(t, ns.ClientURL())
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, mappingConf).s
		if got := mappingScenario(t, s.ClientURL()); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("nats-server:\n  %s\nevnats:\n  %s", strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
	})
}

func mappingScenario(t *testing.T, url string) []string {
	t.Helper()
	conn := func(u string) *nats.Conn {
		nc, err := nats.Connect(url, nats.UserInfo(u, u), nats.NoReconnect())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	a, b, g := conn("a"), conn("b"), conn("g")
	subs := map[string]*nats.Subscription{}
	for name, nc := range map[string]*nats.Conn{"a": a, "b": b, "g": g} {
		sub, err := nc.SubscribeSync(">")
		if err != nil {
			t.Fatal(err)
		}
		sub.SetPendingLimits(-1, -1)
		nc.Flush()
		subs[name] = sub
	}
	for _, subj := range []string{"orders.eu.42", "part.k1", "part.k2", "part.k3", "part.k4", "part.k5", "all.x.y", "plain", "sl.abcd", "sp.a-b-c", "sr.xyz.abcde"} {
		a.Publish(subj, nil)
	}
	g.Publish("g.7", nil)
	for range 200 {
		a.Publish("split", nil)
		a.Publish("some", nil)
	}
	for _, nc := range []*nats.Conn{a, g} {
		nc.Flush()
	}
	counts := func(name string, n int) []string {
		got := map[string]int{}
		for range n {
			m, err := subs[name].NextMsg(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v after %v", name, err, got)
			}
			got[m.Subject]++
		}
		var out []string
		for subj, k := range got {
			switch {
			case subj == "s1" || subj == "s2":
				out = append(out, fmt.Sprintf("%s: %s some (%v)", name, subj, k > 50 && k < 150))
			case subj == "kept" || subj == "some":
				out = append(out, fmt.Sprintf("%s: %s some (%v)", name, subj, k > 20 && k < 180))
			default:
				out = append(out, fmt.Sprintf("%s: %s x%d", name, subj, k))
			}
		}
		sort.Strings(out)
		return out
	}
	out := counts("a", 11+400)
	out = append(out, counts("g", 1)...)
	if m, err := subs["b"].NextMsg(100 * time.Millisecond); err == nil {
		out = append(out, "b got "+m.Subject)
	}
	return out
}

// TestOperatorAccountMappings: an account JWT's mappings hold for its
// users, and a pushed update that changes them applies at once.
func TestOperatorAccountMappings(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		op := newOpSetup(t)
		op.aClaims.Mappings = jwt.Mapping{"in.*": {{Subject: "out.{{wildcard(1)}}"}}}
		op.sign(t, op.aClaims)
		dir := t.TempDir()
		conf := strings.Replace(op.conf(), "resolver: MEMORY", "resolver: {type: full, dir: \""+dir+"\"}", 1)
		conf = strings.Replace(conf, "jetstream: enabled\n", "", 1)
		s := startFromFile(t, o, conf).s
		aCreds, _ := creds(t, op.a, nil)
		bCreds, _ := creds(t, op.b, nil)
		nc := connect(t, s, nats.UserCredentials(aCreds))
		other := connect(t, s, nats.UserCredentials(bCreds))
		sub, _ := nc.SubscribeSync(">")
		osub, _ := other.SubscribeSync(">")
		nc.Flush()
		other.Flush()
		nc.Publish("in.1", nil)
		if m := nextMsg(t, sub); m.Subject != "out.1" {
			t.Fatalf("got %s, want out.1", m.Subject)
		}
		op.aClaims.Mappings = jwt.Mapping{"in.*": {{Subject: "moved.{{wildcard(1)}}"}}}
		op.sign(t, op.aClaims)
		sysCreds, _ := creds(t, op.sys, nil)
		sys := connect(t, s, nats.UserCredentials(sysCreds))
		if m, err := sys.Request("$SYS.REQ.ACCOUNT."+op.aPub+".CLAIMS.UPDATE", []byte(op.jwts[op.aPub]), 5*time.Second); err != nil || !strings.Contains(string(m.Data), "jwt updated") {
			t.Fatalf("push: %v", err)
		}
		nc.Publish("in.2", nil)
		if m := nextMsg(t, sub); m.Subject != "moved.2" {
			t.Fatalf("after the update got %s, want moved.2", m.Subject)
		}
		noMsg(t, other, osub)
	})
}

const importMappingConf = `
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [ {service: "svc.>"} ]
    mappings { "svc.old": "svc.new" }
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [ {service: {account: A, subject: "svc.>"}} ]
  }
}
`

// TestServiceImportMappedDifferential: a request that enters an account
// through a service import is mapped by that account's mappings, as
// nats-server does: B asks svc.old, A's responder hears it on svc.new.
func TestServiceImportMappedDifferential(t *testing.T) {
	scenario := func(t *testing.T, url string) string {
		a, err := nats.Connect(url, nats.UserInfo("a", "a"))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		if _, err := a.Subscribe("svc.*", func(m *nats.Msg) { m.Respond([]byte(m.Subject)) }); err != nil {
			t.Fatal(err)
		}
		a.Flush()
		b, err := nats.Connect(url, nats.UserInfo("b", "b"))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		m, err := b.Request("svc.old", nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return string(m.Data)
	}
	want := scenario(t, startNatsServer(t, importMappingConf).ClientURL())
	if want != "svc.new" {
		t.Fatalf("nats-server answered on %q", want)
	}
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		if got := scenario(t, startFromFile(t, o, importMappingConf).s.ClientURL()); got != want {
			t.Fatalf("evnats answered on %q, nats-server on %q", got, want)
		}
	})
}

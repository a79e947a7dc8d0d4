package loop_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const sysMonConf = `
server_name: edge1
jetstream: enabled
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  APP { users = [ {user: app, password: app} ], jetstream: enabled }
}
system_account: SYS
`

// sysAPI requests subj as the system user and decodes nats-server's
// ServerAPIResponse with data into data; it fails on an error response.
func sysAPI(t *testing.T, nc *nats.Conn, subj, body string, data any) {
	t.Helper()
	m, err := nc.Request(subj, []byte(body), 5*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", subj, err)
	}
	var r natsserver.ServerAPIResponse
	r.Data = data
	if err := json.Unmarshal(m.Data, &r); err != nil || r.Error != nil || r.Server == nil || r.Server.Name != "edge1" {
		t.Fatalf("%s %s: %v %s", subj, body, err, m.Data)
	}
}

// TestSystemMonitorRequests: after known traffic in account APP, every
// $SYS.REQ.SERVER.PING.<X> and $SYS.REQ.SERVER.<id>.<X> answers with the
// monitoring endpoint's document in nats-server's ServerAPIResponse,
// request options mapped as the HTTP query's; the account-scoped
// $SYS.REQ.ACCOUNT.APP.<X> see APP alone; /connz?acc= and /accountz?acc=
// over HTTP agree; an APP user gets no responders.
func TestSystemMonitorRequests(t *testing.T) {
	looptest.Each(t, loop.Options{HTTPPort: -1}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, sysMonConf).s
		sys := connUser(t, s, "sys", "sys")
		app := connUser(t, s, "app", "app")
		sub, _ := app.SubscribeSync("app.in")
		for range 3 {
			_ = app.Publish("app.in", []byte("hello"))
		}
		app.Flush()
		for range 3 {
			nextMsg(t, sub)
		}
		js, _ := app.JetStream()
		if _, err := js.AddStream(&nats.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := js.Publish("orders.1", []byte("x")); err != nil {
			t.Fatal(err)
		}

		var st natsserver.ServerStatsMsg
		m, err := sys.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second)
		if err != nil || json.Unmarshal(m.Data, &st) != nil || st.Stats.Received.Msgs < 3 || st.Stats.Sent.Msgs < 3 {
			t.Fatalf("statsz %v %s", err, m.Data)
		}
		id := st.Server.ID
		for _, pre := range []string{"$SYS.REQ.SERVER.PING.", "$SYS.REQ.SERVER." + id + "."} {
			var cz natsserver.Connz
			sysAPI(t, sys, pre+"CONNZ", `{"acc":"APP","auth":true,"subscriptions":true}`, &cz)
			if cz.NumConns != 1 || cz.Conns[0].Account != "APP" || cz.Conns[0].AuthorizedUser != "app" ||
				cz.Conns[0].InMsgs < 3 || cz.Conns[0].OutMsgs < 3 || cz.Conns[0].Port == 0 ||
				!slices.Contains(cz.Conns[0].Subs, "app.in") {
				t.Fatalf("%sCONNZ: %+v", pre, *cz.Conns[0])
			}
			var all natsserver.Connz
			sysAPI(t, sys, pre+"CONNZ", `{"subscriptions_detail":true,"limit":1}`, &all)
			if all.Total != 2 || all.NumConns != 1 || all.Limit != 1 || all.Conns[0].Subs != nil {
				t.Fatalf("%sCONNZ limit 1: %+v", pre, all)
			}
			var sz natsserver.Subsz
			sysAPI(t, sys, pre+"SUBSZ", `{"subscriptions":true,"test":"app.in"}`, &sz)
			if sz.Total != 1 || len(sz.Subs) != 1 || sz.Subs[0].Account != "APP" {
				t.Fatalf("%sSUBSZ: %+v", pre, sz)
			}
			var jz natsserver.JSInfo
			sysAPI(t, sys, pre+"JSZ", `{"accounts":true,"streams":true}`, &jz)
			if jz.Streams != 1 || jz.Messages != 1 {
				t.Fatalf("%sJSZ: %+v", pre, jz)
			}
			var v natsserver.Varz
			sysAPI(t, sys, pre+"VARZ", "", &v)
			if v.ID != id || v.InMsgs < 3 || v.SystemAccount != "SYS" || v.HTTPReqStats["/connz"] != 0 {
				t.Fatalf("%sVARZ: %+v", pre, v)
			}
			var hz natsserver.HealthStatus
			sysAPI(t, sys, pre+"HEALTHZ", `{"js-enabled-only":true}`, &hz)
			if hz.Status != "ok" {
				t.Fatalf("%sHEALTHZ: %+v", pre, hz)
			}
			var az natsserver.Accountz
			sysAPI(t, sys, pre+"ACCOUNTZ", "", &az)
			if az.SystemAccount != "SYS" || fmt.Sprint(az.Accounts) != "[$G APP SYS]" {
				t.Fatalf("%sACCOUNTZ: %+v", pre, az)
			}
			sysAPI(t, sys, pre+"ACCOUNTZ", `{"account":"APP"}`, &az)
			if az.Account == nil || az.Account.AccountName != "APP" || az.Account.ClientCnt != 1 || !az.Account.JetStream {
				t.Fatalf("%sACCOUNTZ APP: %+v", pre, az.Account)
			}
			var lz natsserver.Leafz
			sysAPI(t, sys, pre+"LEAFZ", "", &lz)
			var rz natsserver.Routez
			sysAPI(t, sys, pre+"ROUTEZ", "", &rz)
			var gz natsserver.Gatewayz
			sysAPI(t, sys, pre+"GATEWAYZ", "", &gz)
			if lz.ID != id || rz.ID != id || gz.ID != id {
				t.Fatalf("%s LEAFZ/ROUTEZ/GATEWAYZ ids %q %q %q", pre, lz.ID, rz.ID, gz.ID)
			}
			var idz natsserver.ServerID
			sysAPI(t, sys, pre+"IDZ", "", &idz)
			if idz.ID != id || idz.Name != "edge1" {
				t.Fatalf("%sIDZ: %+v", pre, idz)
			}
		}
		// A malformed option is the endpoint's 400, as an error.
		m, err = sys.Request("$SYS.REQ.SERVER.PING.CONNZ", []byte(`{"sort":"bogus"}`), 5*time.Second)
		var bad natsserver.ServerAPIResponse
		if err != nil || json.Unmarshal(m.Data, &bad) != nil || bad.Error == nil || bad.Error.Code != 400 {
			t.Fatalf("bad sort: %v %s", err, m.Data)
		}

		// Account-scoped requests see APP alone.
		var cz natsserver.Connz
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.APP.CONNZ", `{"acc":"SYS"}`, &cz)
		if cz.NumConns != 1 || cz.Conns[0].Account != "APP" {
			t.Fatalf("ACCOUNT.APP.CONNZ: %+v", cz)
		}
		var sz natsserver.Subsz
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.APP.SUBSZ", `{"subscriptions":true}`, &sz)
		if sz.Total != 2 || len(sz.Subs) != 2 || sz.Subs[0].Account != "APP" || sz.Subs[1].Account != "APP" {
			t.Fatalf("ACCOUNT.APP.SUBSZ: %+v", sz)
		}
		var ai natsserver.AccountInfo
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.APP.INFO", "", &ai)
		if ai.AccountName != "APP" || ai.ClientCnt != 1 {
			t.Fatalf("ACCOUNT.APP.INFO: %+v", ai)
		}
		var jz natsserver.JSInfo
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.APP.JSZ", `{"streams":true}`, &jz)
		if len(jz.AccountDetails) != 1 || jz.AccountDetails[0].Name != "APP" || len(jz.AccountDetails[0].Streams) != 1 {
			t.Fatalf("ACCOUNT.APP.JSZ: %+v", jz)
		}
		m, err = sys.Request("$SYS.REQ.ACCOUNT.APP.CONNS", nil, 5*time.Second)
		var nc natsserver.AccountNumConns
		if err != nil || json.Unmarshal(m.Data, &nc) != nil || nc.Account != "APP" || nc.Conns != 1 || nc.NumSubs != 2 {
			t.Fatalf("ACCOUNT.APP.CONNS: %v %s", err, m.Data)
		}

		var stz natsserver.AccountStatz
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.APP.STATZ", "", &stz)
		if len(stz.Accounts) != 1 || stz.Accounts[0].Account != "APP" || stz.Accounts[0].Conns != 1 ||
			stz.Accounts[0].Received.Msgs < 3 {
			t.Fatalf("ACCOUNT.APP.STATZ: %+v", stz.Accounts)
		}
		sysAPI(t, sys, "$SYS.REQ.ACCOUNT.PING.STATZ", `{"accounts":["APP","SYS","$G"]}`, &stz)
		if len(stz.Accounts) != 2 || stz.Accounts[0].Account != "APP" || stz.Accounts[1].Account != "SYS" {
			t.Fatalf("ACCOUNT.PING.STATZ: %+v", stz.Accounts)
		}
		if _, err := sys.Request("$SYS.REQ.ACCOUNT.$G.STATZ", nil, 300*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("STATZ of an account without connections: %v, want no answer", err)
		}

		// Over HTTP, the same builders.
		var hc natsserver.Connz
		monJSON(t, s, "/connz?acc=APP", &hc)
		if hc.NumConns != 1 || hc.Conns[0].Account != "APP" {
			t.Fatalf("/connz?acc=APP: %+v", hc)
		}
		var hs natsserver.Subsz
		monJSON(t, s, "/subsz", &hs)
		if hs.NumSubs < 3 { // app's two and sys's inbox at least
			t.Fatalf("/subsz: %+v", hs)
		}
		var ha natsserver.Accountz
		monJSON(t, s, "/accountz?acc=SYS", &ha)
		if ha.Account == nil || !ha.Account.IsSystem || ha.Account.ClientCnt != 1 {
			t.Fatalf("/accountz?acc=SYS: %+v", ha.Account)
		}

		// As nats-server imports into every account: its own users' CONNZ
		// pings see that account alone, whatever the options say.
		for _, subj := range []string{"$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.ACCOUNT.PING.CONNZ"} {
			var own natsserver.Connz
			m, err := app.Request(subj, []byte(`{"acc":"SYS","auth":true}`), 5*time.Second)
			r := natsserver.ServerAPIResponse{Data: &own}
			if err != nil || json.Unmarshal(m.Data, &r) != nil || r.Error != nil || own.NumConns != 1 ||
				own.Conns[0].Account != "APP" || own.Conns[0].AuthorizedUser != "app" {
				t.Fatalf("app user %s: %v %+v", subj, err, own)
			}
		}
		for _, subj := range []string{"$SYS.REQ.SERVER.PING", "$SYS.REQ.SERVER.PING.VARZ", "$SYS.REQ.SERVER." + id + ".JSZ",
			"$SYS.REQ.ACCOUNT.APP.CONNZ"} {
			if _, err := app.Request(subj, nil, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
				t.Fatalf("app user %s: %v, want no responders", subj, err)
			}
		}
	})
}

// TestSystemConnzImportAfterReload: an account added by a reload answers
// its users' $SYS.REQ.SERVER.PING.CONNZ with its own connections, and
// /varz's subscriptions do not count the server's responders.
func TestSystemConnzImportAfterReload(t *testing.T) {
	looptest.Each(t, loop.Options{HTTPPort: -1}, func(t *testing.T, o loop.Options) {
		r := startFromFile(t, o, sysConf)
		if err := r.rewrite(t, `
server_name: edge1
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  APP { users = [ {user: app, password: app} ] }
  NEW { users = [ {user: new, password: new} ] }
}
system_account: SYS
`); err != nil {
			t.Fatal(err)
		}
		nc := connUser(t, r.s, "new", "new")
		m, err := nc.Request("$SYS.REQ.SERVER.PING.CONNZ", nil, 5*time.Second)
		var cz natsserver.Connz
		resp := natsserver.ServerAPIResponse{Data: &cz}
		if err != nil || json.Unmarshal(m.Data, &resp) != nil || cz.NumConns != 1 {
			t.Fatalf("NEW: %v %+v", err, cz)
		}
		var v natsserver.Varz
		monJSON(t, r.s, "/varz", &v)
		if v.Subscriptions != 1 { // nc's reply inbox
			t.Fatalf("varz subscriptions %d, want 1", v.Subscriptions)
		}
	})
}

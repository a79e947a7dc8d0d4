package loop_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const sysConf = `
server_name: edge1
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  APP { users = [ {user: app, password: app} ] }
}
system_account: SYS
`

// TestSystemAccountRequests: a system user's $SYS.REQ.SERVER.PING gets
// nats-server's ServerStatsMsg, PING.VARZ and <id>.VARZ a ServerAPIResponse
// with the varz, HEALTHZ ok; a ping filtered to another server name gets
// no answer; a user of another account gets no responders.
func TestSystemAccountRequests(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, sysConf).s
		sys := connUser(t, s, "sys", "sys")
		app := connUser(t, s, "app", "app")
		app.Subscribe("anything", func(*nats.Msg) {}) // counted in statsz
		app.Flush()

		m, err := sys.Request("$SYS.REQ.SERVER.PING", nil, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var st natsserver.ServerStatsMsg
		if err := json.Unmarshal(m.Data, &st); err != nil {
			t.Fatalf("%s: %v", m.Data, err)
		}
		if st.Server.Name != "edge1" || st.Server.ID == "" || st.Stats.Connections != 2 || st.Stats.NumSubs == 0 {
			t.Fatalf("statsz %s", m.Data)
		}
		for _, subj := range []string{"$SYS.REQ.SERVER.PING.VARZ", "$SYS.REQ.SERVER." + st.Server.ID + ".VARZ"} {
			m, err := sys.Request(subj, nil, 5*time.Second)
			if err != nil {
				t.Fatalf("%s: %v", subj, err)
			}
			var v struct {
				Server natsserver.ServerInfo `json:"server"`
				Data   natsserver.Varz       `json:"data"`
			}
			if err := json.Unmarshal(m.Data, &v); err != nil || v.Data.ID != st.Server.ID || v.Data.Name != "edge1" {
				t.Fatalf("%s: %s %v", subj, m.Data, err)
			}
		}
		m, err = sys.Request("$SYS.REQ.SERVER.PING.CONNZ", []byte(`{"acc":"APP","auth":true}`), 5*time.Second)
		var cz natsserver.ServerAPIConnzResponse
		if err != nil || json.Unmarshal(m.Data, &cz) != nil || cz.Data == nil || cz.Data.NumConns != 1 ||
			cz.Data.Conns[0].Account != "APP" || cz.Data.Conns[0].AuthorizedUser != "app" || cz.Data.Conns[0].NumSubs != 1 {
			t.Fatalf("connz: %v %s", err, m.Data)
		}
		m, err = sys.Request("$SYS.REQ.SERVER.PING.HEALTHZ", nil, 5*time.Second)
		if err != nil || !json.Valid(m.Data) {
			t.Fatalf("healthz: %v", err)
		}
		if _, err := sys.Request("$SYS.REQ.SERVER.PING", []byte(`{"server_name":"other"}`), 300*time.Millisecond); !errors.Is(err, nats.ErrTimeout) {
			t.Fatalf("filtered ping: %v, want a timeout", err)
		}
		if _, err := app.Request("$SYS.REQ.SERVER.PING", nil, 2*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("app user: %v, want no responders", err)
		}
	})
}

// TestSystemAccountConnectEvents: a system user sees
// $SYS.ACCOUNT.<acc>.CONNECT and .DISCONNECT for another account's client,
// in nats-server's ConnectEventMsg and DisconnectEventMsg form.
func TestSystemAccountConnectEvents(t *testing.T) {
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, sysConf).s
		sys := connUser(t, s, "sys", "sys")
		conn, _ := sys.SubscribeSync("$SYS.ACCOUNT.*.CONNECT")
		disc, _ := sys.SubscribeSync("$SYS.ACCOUNT.APP.DISCONNECT")
		sys.Flush()
		app, err := nats.Connect(s.ClientURL(), nats.UserInfo("app", "app"), nats.Name("sensor-7"))
		if err != nil {
			t.Fatal(err)
		}
		m := nextMsg(t, conn)
		var ce natsserver.ConnectEventMsg
		if err := json.Unmarshal(m.Data, &ce); err != nil || m.Subject != "$SYS.ACCOUNT.APP.CONNECT" ||
			ce.Type != natsserver.ConnectEventMsgType || ce.Client.Account != "APP" || ce.Client.User != "app" ||
			ce.Client.Name != "sensor-7" || ce.Server.Name != "edge1" {
			t.Fatalf("%s %s %v", m.Subject, m.Data, err)
		}
		app.Close()
		m = nextMsg(t, disc)
		var de natsserver.DisconnectEventMsg
		if err := json.Unmarshal(m.Data, &de); err != nil || de.Type != natsserver.DisconnectEventMsgType || de.Client.Account != "APP" {
			t.Fatalf("%s %v", m.Data, err)
		}
	})
}

package loop

// The system account's monitoring requests ($SYS.REQ.SERVER.PING.<X>,
// $SYS.REQ.SERVER.<id>.<X>, $SYS.REQ.ACCOUNT.<acc>.<X>) are answered by
// the HTTP endpoints' own builders through Monitor.Request: one code path
// for both. Runs on answerSys's goroutine (sysacc.go).

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sysAPIResponse is nats-server's ServerAPIResponse.
type sysAPIResponse struct {
	Server *sysServerInfo `json:"server"`
	Data   any            `json:"data,omitempty"`
	Error  *sysAPIError   `json:"error,omitempty"`
}

// sysAPIError is nats-server's ApiError.
type sysAPIError struct {
	Code        int    `json:"code"`
	Description string `json:"description,omitempty"`
}

// sysPaths maps a request's endpoint to the monitoring path that builds
// its answer.
var sysPaths = map[string]string{
	"VARZ": "/varz", "CONNZ": "/connz", "SUBSZ": "/subsz", "JSZ": "/jsz", "HEALTHZ": "/healthz",
	"ACCOUNTZ": "/accountz", "LEAFZ": "/leafz", "ROUTEZ": "/routez", "GATEWAYZ": "/gatewayz",
	"INFO": "/accountz", "STATZ": "/accstatz",
}

// sysOptions maps each endpoint's request options (nats-server's
// ConnzOptions, SubszOptions, JSzOptions, HealthzOptions, AccountzOptions,
// LeafzOptions, by their JSON names) to the query parameters of its
// monitoring path. Options not listed are ignored, as are the event
// filter's (server_name, cluster, host, tags, domain).
var sysOptions = map[string]map[string]string{
	"CONNZ": {"sort": "sort", "auth": "auth", "subscriptions": "subs", "subscriptions_detail": "subs",
		"offset": "offset", "limit": "limit", "cid": "cid", "mqtt_client": "mqtt_client", "state": "state",
		"user": "user", "acc": "acc"},
	"SUBSZ": {"offset": "offset", "limit": "limit", "subscriptions": "subs", "account": "acc", "test": "test"},
	"JSZ": {"account": "acc", "accounts": "accounts", "streams": "streams", "consumer": "consumers",
		"config": "config", "offset": "offset", "limit": "limit"},
	"HEALTHZ": {"js-enabled": "js-enabled", "js-enabled-only": "js-enabled-only", "js-server-only": "js-server-only",
		"js-meta-only": "js-meta-only", "account": "account", "stream": "stream", "consumer": "consumer",
		"details": "details"},
	"ACCOUNTZ": {"account": "acc"},
	"LEAFZ":    {"subscriptions": "subs", "account": "acc"},
	"STATZ":    {"accounts": "accounts", "include_unused": "unused"},
}

// sysAccParam is the query parameter that scopes an endpoint to one
// account, for $SYS.REQ.ACCOUNT.<acc>.<X>.
var sysAccParam = map[string]string{"CONNZ": "acc", "SUBSZ": "acc", "JSZ": "acc", "LEAFZ": "acc", "INFO": "acc", "STATZ": "accounts"}

// sysQuery maps a request body to the query of endpoint's monitoring
// path; acc, when set, scopes it to that account whatever the body says.
func sysQuery(endpoint, acc string, body []byte) (url.Values, error) {
	q := url.Values{}
	var opts map[string]any
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			return nil, err
		}
	}
	names := sysOptions[endpoint]
	for k, v := range opts {
		p, ok := names[k]
		if !ok {
			continue
		}
		var val string
		switch v := v.(type) {
		case bool:
			if !v {
				continue
			}
			val = "true"
			if k == "subscriptions_detail" {
				val = "detail"
			}
		case float64:
			if v == 0 && k != "state" {
				continue
			}
			val = strconv.FormatFloat(v, 'f', -1, 64)
			if k == "state" { // nats-server's ConnState
				val = map[float64]string{0: "open", 1: "closed", 2: "all"}[v]
			}
		case string:
			if v == "" {
				continue
			}
			val = v
		case []any: // a list of names (AccountStatzOptions.Accounts)
			var names []string
			for _, n := range v {
				if n, ok := n.(string); ok && n != "" {
					names = append(names, n)
				}
			}
			if len(names) == 0 {
				continue
			}
			val = strings.Join(names, ",")
		default:
			continue
		}
		if k == "subscriptions" && q.Get("subs") == "detail" {
			continue
		}
		q.Set(p, val)
	}
	if acc != "" {
		q.Set(sysAccParam[endpoint], acc)
	}
	return q, nil
}

// sysMonitor answers endpoint from the monitoring builders, in
// nats-server's ServerAPIResponse: the endpoint's JSON as data, or an
// error with the HTTP status and text of a refused request.
func (s *Server) sysMonitor(info *sysServerInfo, endpoint, acc string, body []byte) *sysAPIResponse {
	resp := &sysAPIResponse{Server: info}
	q, err := sysQuery(endpoint, acc, body)
	if err != nil {
		resp.Error = &sysAPIError{Code: http.StatusBadRequest, Description: err.Error()}
		return resp
	}
	code, out := s.Monitor().Request(sysPaths[endpoint], q)
	switch {
	case code == http.StatusOK || endpoint == "HEALTHZ" && json.Valid(out):
		if endpoint == "INFO" { // the account alone, as nats-server's accountInfo
			var az struct {
				Account json.RawMessage `json:"account_detail"`
			}
			if json.Unmarshal(out, &az) == nil && len(az.Account) > 0 {
				out = az.Account
			}
		}
		resp.Data = json.RawMessage(out)
	default:
		resp.Error = &sysAPIError{Code: code, Description: strings.TrimSpace(string(out))}
	}
	return resp
}

// sysAccEndpoints are answered as $SYS.REQ.ACCOUNT.<acc>.<X>.
var sysAccEndpoints = []string{"CONNZ", "SUBSZ", "JSZ", "INFO", "LEAFZ", "CONNS", "STATZ"}

// sysAccConns is nats-server's AccountNumConns: how many connections an
// account has here.
type sysAccConns struct {
	Server        *sysServerInfo `json:"server"`
	Account       string         `json:"acc"`
	Name          string         `json:"name"`
	Conns         int            `json:"conns"`
	LeafNodes     int            `json:"leafnodes"`
	TotalConns    int            `json:"total_conns"`
	NumSubs       uint32         `json:"num_subscriptions"`
	Sent          sysMsgBytes    `json:"sent"`
	Received      sysMsgBytes    `json:"received"`
	SlowConsumers int64          `json:"slow_consumers"`
}

// answerConns answers $SYS.REQ.ACCOUNT.<acc>.CONNS as nats-server: only
// when the account has connections here.
func (s *Server) answerConns(sys *account, r sysReq, seq uint64) {
	if r.reply == "" {
		return
	}
	n := &sysAccConns{Account: r.acc, Name: r.acc, Server: &sysServerInfo{Name: s.opts.ServerName,
		Host: s.opts.Host, ID: s.id, Version: Version, JetStream: s.js != nil, Seq: seq, Time: time.Now().UTC()}}
	for _, c := range s.Conns(false) {
		if c.Account != r.acc {
			continue
		}
		n.Conns++
		n.NumSubs += c.NumSubs
		n.Sent.Msgs += c.OutMsgs
		n.Sent.Bytes += c.OutBytes
		n.Received.Msgs += c.InMsgs
		n.Received.Bytes += c.InBytes
	}
	if n.Conns == 0 {
		return
	}
	n.TotalConns = n.Conns
	b, err := json.Marshal(n)
	if err != nil {
		return
	}
	s.deliverMatched(sys.sl.Match(r.reply), r.reply, "", nil, b)
}

// sysAccEndpoint names the queued request for $SYS.REQ.ACCOUNT.<acc>.<e>:
// STATZ there is an account's (/accstatz), not the server's statsz.
func sysAccEndpoint(e string) string {
	if e == "STATZ" {
		return "STATZ.ACC"
	}
	return e
}

// sysNoAccounts tells an /accstatz document that lists no account.
func sysNoAccounts(data any) bool {
	raw, ok := data.(json.RawMessage)
	if !ok {
		return false
	}
	var sz struct {
		Accounts []json.RawMessage `json:"account_statz"`
	}
	return json.Unmarshal(raw, &sz) == nil && len(sz.Accounts) == 0
}

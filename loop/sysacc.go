package loop

// Concurrency: the $SYS request handlers are internal subscriptions in
// the system account; they run on the requester's goroutine and only
// queue the request (sysReqs, non-blocking: past its capacity a request
// is dropped, as a busy nats-server would time out). One goroutine,
// started by Start and ended by Shutdown (done), builds each answer (a
// varz reads memory statistics, which must not run on a loop) and
// publishes it into the system account as the server does.

import (
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nuid"
)

// sysReq is one request to the system account's server endpoints.
type sysReq struct {
	endpoint string   // STATSZ, VARZ, HEALTHZ, IDZ, CLAIMS.UPDATE, ...
	acc      string   // the account the subject names (CLAIMS.UPDATE, $SYS.REQ.ACCOUNT.<acc>.<X>), or ""
	to       *account // where the reply goes: nil for the system account
	reply    string
	body     []byte
}

// sysServerInfo is nats-server's ServerInfo: who answers.
type sysServerInfo struct {
	Name      string    `json:"name"`
	Host      string    `json:"host"`
	ID        string    `json:"id"`
	Version   string    `json:"ver"`
	JetStream bool      `json:"jetstream"`
	Flags     uint64    `json:"flags"`
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
}

// sysMsgBytes is nats-server's DataStats without routes and gateways.
type sysMsgBytes struct {
	Msgs  int64 `json:"msgs"`
	Bytes int64 `json:"bytes"`
}

// sysStats is nats-server's ServerStats, the fields evnats has.
type sysStats struct {
	Start            time.Time   `json:"start"`
	Mem              int64       `json:"mem"`
	Cores            int         `json:"cores"`
	CPU              float64     `json:"cpu"`
	Connections      int         `json:"connections"`
	TotalConnections uint64      `json:"total_connections"`
	ActiveAccounts   int         `json:"active_accounts"`
	NumSubs          uint32      `json:"subscriptions"`
	Sent             sysMsgBytes `json:"sent"`
	Received         sysMsgBytes `json:"received"`
	SlowConsumers    int64       `json:"slow_consumers"`
	StaleConnections int64       `json:"stale_connections,omitempty"`
	MaxProcs         int         `json:"gomaxprocs,omitempty"`
}

// The server endpoints a system user may request, as
// $SYS.REQ.SERVER.PING.<endpoint> (every server answers) or
// $SYS.REQ.SERVER.<id>.<endpoint>; $SYS.REQ.SERVER.PING alone is STATSZ.
// Each but STATSZ and IDZ is answered by the monitoring endpoint of the
// same name (sysPaths), the request's JSON options mapped to its query.
var sysEndpoints = []string{"STATSZ", "VARZ", "CONNZ", "SUBSZ", "JSZ", "HEALTHZ", "ACCOUNTZ",
	"LEAFZ", "ROUTEZ", "GATEWAYZ", "IDZ"}

const sysReqQueue = 256

// startSysHandlers subscribes the server endpoints in the system account;
// Start then runs answerSys.
func (s *Server) startSysHandlers() {
	sys := s.live.Load().auth.sysAcc
	if sys == nil {
		return
	}
	s.sysReqs = make(chan sysReq, sysReqQueue)
	s.userInfoImport(sys) // counted as an import (sysImportSubs), not here
	before := sys.sl.Count()
	defer func() { s.sysSubs.Store(int32(sys.sl.Count() - before)) }()
	enqueue := func(endpoint string) InternalHandler {
		return func(_, reply []byte, hdrLen int, msg []byte) {
			if len(reply) == 0 {
				return
			}
			body := msg
			if hdrLen >= 0 {
				body = msg[hdrLen:]
			}
			select {
			case s.sysReqs <- sysReq{endpoint: endpoint, reply: string(reply), body: append([]byte(nil), body...)}:
			default:
			}
		}
	}
	sys.sl.Insert(internalSub("$SYS.REQ.SERVER.PING", enqueue("STATSZ")))
	if dirResolver(&s.opts) && s.live.Load().auth.op != nil {
		update := func(subject, reply []byte, hdrLen int, msg []byte) {
			body := msg
			if hdrLen >= 0 {
				body = msg[hdrLen:]
			}
			acc := ""
			if t := strings.Split(string(subject), "."); len(t) == 6 {
				acc = t[3] // $SYS.REQ.ACCOUNT.<acc>.CLAIMS.UPDATE
			}
			select {
			case s.sysReqs <- sysReq{endpoint: "CLAIMS.UPDATE", acc: acc, reply: string(reply), body: append([]byte(nil), body...)}:
			default:
			}
		}
		sys.sl.Insert(internalSub("$SYS.REQ.CLAIMS.UPDATE", update))
		sys.sl.Insert(internalSub("$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE", update))
		sys.sl.Insert(internalSub("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP", func(subject, reply []byte, _ int, _ []byte) {
			t := strings.Split(string(subject), ".")
			if len(reply) == 0 || len(t) != 6 {
				return
			}
			select {
			case s.sysReqs <- sysReq{endpoint: "CLAIMS.LOOKUP", acc: t[3], reply: string(reply)}:
			default:
			}
		}))
		sys.sl.Insert(internalSub("$SYS.REQ.CLAIMS.LIST", enqueue("CLAIMS.LIST")))
		sys.sl.Insert(internalSub("$SYS.REQ.CLAIMS.DELETE", func(_, reply []byte, hdrLen int, msg []byte) {
			body := msg
			if hdrLen >= 0 {
				body = msg[hdrLen:]
			}
			select { // a delete with no reply is still done, as an update is
			case s.sysReqs <- sysReq{endpoint: "CLAIMS.DELETE", reply: string(reply), body: append([]byte(nil), body...)}:
			default:
			}
		}))
	}
	s.accountSysImports(s.live.Load().auth.accounts, sys)
	for _, e := range sysEndpoints {
		sys.sl.Insert(internalSub("$SYS.REQ.SERVER.PING."+e, enqueue(e)))
		sys.sl.Insert(internalSub("$SYS.REQ.SERVER."+s.id+"."+e, enqueue(e)))
	}
	// $SYS.REQ.ACCOUNT.<acc>.<X>: X scoped to the account the subject
	// names; PING names the system account itself.
	for _, e := range sysAccEndpoints {
		sys.sl.Insert(internalSub("$SYS.REQ.ACCOUNT.*."+e, func(subject, reply []byte, hdrLen int, msg []byte) {
			t := strings.Split(string(subject), ".")
			if len(reply) == 0 || len(t) != 5 {
				return
			}
			acc := t[3]
			if acc == "PING" && e == "STATZ" { // every account's
				acc = ""
			} else if acc == "PING" {
				acc = sys.name
			}
			body := msg
			if hdrLen >= 0 {
				body = msg[hdrLen:]
			}
			select {
			case s.sysReqs <- sysReq{endpoint: sysAccEndpoint(e), acc: acc, reply: string(reply), body: append([]byte(nil), body...)}:
			default:
			}
		}))
	}
}

// answerSys answers queued server requests until shutdown.
func (s *Server) answerSys() {
	sys := s.live.Load().auth.sysAcc
	var seq atomic.Uint64
	for {
		select {
		case <-s.done:
			return
		case r := <-s.sysReqs:
			if r.endpoint == "CLAIMS.UPDATE" {
				s.answerClaimsUpdate(sys, r)
				continue
			}
			if s.answerClaims(sys, r) {
				continue
			}
			if r.endpoint == "CONNS" {
				s.answerConns(sys, r, seq.Add(1))
				continue
			}
			if r.reply == "" || !s.sysFilterMatches(r.body) {
				continue
			}
			info := &sysServerInfo{
				Name: s.opts.ServerName, Host: s.opts.Host, ID: s.id, Version: Version,
				JetStream: s.js != nil, Seq: seq.Add(1), Time: time.Now().UTC(),
			}
			if s.js != nil {
				info.Flags = 1 // nats-server's JetStreamEnabled capability
			}
			var out any
			switch r.endpoint {
			case "STATSZ":
				out = struct {
					Server *sysServerInfo `json:"server"`
					Stats  *sysStats      `json:"statsz"`
				}{info, s.sysStats()}
			case "IDZ":
				out = &sysAPIResponse{Server: info, Data: map[string]string{
					"name": s.opts.ServerName, "host": s.opts.Host, "id": s.id}}
			case "STATZ.ACC":
				resp := s.sysMonitor(info, "STATZ", r.acc, r.body)
				if resp.Error == nil && sysNoAccounts(resp.Data) {
					continue // as nats-server: no answer when no account matches
				}
				out = resp
			default:
				out = s.sysMonitor(info, r.endpoint, r.acc, r.body)
				if r.acc != "" && out.(*sysAPIResponse).Error == nil && r.endpoint == "INFO" &&
					s.live.Load().auth.accounts[r.acc] == nil {
					out = &sysAPIResponse{Server: info, Error: &sysAPIError{Code: 404, Description: "account not found"}}
				}
			}
			b, err := json.Marshal(out)
			if err != nil {
				continue
			}
			to := sys
			if r.to != nil {
				to = r.to
			}
			s.deliverMatched(to.sl.Match(r.reply), r.reply, "", nil, b)
		}
	}
}

// accountSysImports gives the users of every account but the system
// account what nats-server imports into each: $SYS.REQ.SERVER.PING.CONNZ
// and $SYS.REQ.ACCOUNT.PING.CONNZ, answered with that account's own
// connections. Called at start and after each change of accounts (under
// reloadMu); an account gets them once.
func (s *Server) accountSysImports(accounts map[string]*accountSpec, sys *account) {
	if s.sysReqs == nil {
		return
	}
	for _, sp := range accounts {
		a := sp.acc
		s.userInfoImport(a)
		if a == sys || !a.sysImports.CompareAndSwap(false, true) {
			continue
		}
		h := func(_, reply []byte, hdrLen int, msg []byte) {
			if len(reply) == 0 {
				return
			}
			body := msg
			if hdrLen >= 0 {
				body = msg[hdrLen:]
			}
			select {
			case s.sysReqs <- sysReq{endpoint: "CONNZ", acc: a.name, to: a, reply: string(reply), body: append([]byte(nil), body...)}:
			default:
			}
		}
		a.sl.Insert(internalSub("$SYS.REQ.SERVER.PING.CONNZ", h))
		a.sl.Insert(internalSub("$SYS.REQ.ACCOUNT.PING.CONNZ", h))
	}
}

// sysImportSubs is how many of a's subscriptions are the server's own:
// accountSysImports' and the mapping sources shown to links.
func sysImportSubs(a *account) int {
	n := int(a.mapSubs.Load())
	if a.sysImports.Load() {
		n += 2
	}
	if a.userInfo.Load() {
		n++
	}
	return n
}

// userInfoImport gives a's users $SYS.REQ.USER.INFO, as nats-server
// imports it into every account: who the requester is, its account,
// permissions and time left. Its handler runs on the requester's own
// goroutine (the dispatch origin names it), reads the requester's
// session there and answers into the requester's account.
func (s *Server) userInfoImport(a *account) {
	if !a.userInfo.CompareAndSwap(false, true) {
		return
	}
	a.sl.Insert(crossSub("$SYS.REQ.USER.INFO", func(o origin, _, reply []byte, _ int, _ []byte) {
		c := o.pub
		if c == nil || len(reply) == 0 {
			return
		}
		b, err := json.Marshal(&sysAPIResponse{Server: s.sysInfo(), Data: c.userInfo()})
		if err != nil {
			return
		}
		deliverIn(o, c.acc, string(reply), nil, -1, b)
	}))
}

// sysUserInfo is nats-server's UserInfo.
type sysUserInfo struct {
	UserID      string          `json:"user"`
	Account     string          `json:"account"`
	AccountName string          `json:"account_name,omitempty"`
	UserName    string          `json:"user_name,omitempty"`
	Permissions *sysPermissions `json:"permissions,omitempty"`
	Expires     time.Duration   `json:"expires,omitempty"`
}

// sysPermissions is nats-server's Permissions as JSON.
type sysPermissions struct {
	Publish   *sysSubjectPerm `json:"publish"`
	Subscribe *sysSubjectPerm `json:"subscribe"`
}

type sysSubjectPerm struct {
	Allow []string `json:"allow,omitempty"`
	Deny  []string `json:"deny,omitempty"`
}

// userInfo is what $SYS.REQ.USER.INFO tells c about itself. Runs in c's
// context.
func (c *client) userInfo() *sysUserInfo {
	ui := &sysUserInfo{UserID: c.user, Account: c.acc.name, AccountName: c.acc.name}
	if u := c.who; u != nil {
		ui.UserName = u.nameTag
		if u.accTag != "" {
			ui.AccountName = u.accTag
		}
	}
	if p := c.perms.Load(); p != nil {
		ui.Permissions = &sysPermissions{Publish: &sysSubjectPerm{}, Subscribe: &sysSubjectPerm{}}
		if p.pub != nil {
			ui.Permissions.Publish.Allow, ui.Permissions.Publish.Deny = p.pub.Allow, p.pub.Deny
		}
		if p.sub != nil {
			ui.Permissions.Subscribe.Allow, ui.Permissions.Subscribe.Deny = p.sub.Allow, p.sub.Deny
		}
	}
	if exp := c.expires.Load(); exp != 0 {
		ui.Expires = max(time.Until(time.Unix(0, exp)).Truncate(time.Second), time.Second)
	}
	return ui
}

// sysInfo is the server part of a $SYS answer.
func (s *Server) sysInfo() *sysServerInfo {
	info := &sysServerInfo{Name: s.opts.ServerName, Host: s.opts.Host, ID: s.id, Version: Version,
		JetStream: s.js != nil, Time: time.Now().UTC()}
	if s.js != nil {
		info.Flags = 1
	}
	return info
}

// sysFilterMatches applies the filter a ping may carry (nats-server's
// EventFilterOptions): a server name, host or id that is not this
// server's means another server is asked.
func (s *Server) sysFilterMatches(body []byte) bool {
	if len(body) == 0 {
		return true
	}
	var f struct {
		Name string `json:"server_name"`
		Host string `json:"host"`
		ID   string `json:"server_id"`
	}
	if json.Unmarshal(body, &f) != nil {
		return true
	}
	return (f.Name == "" || strings.Contains(s.opts.ServerName, f.Name)) &&
		(f.Host == "" || strings.Contains(s.opts.Host, f.Host)) &&
		(f.ID == "" || f.ID == s.id)
}

// sysStats is the server's statsz.
func (s *Server) sysStats() *sysStats {
	v := s.Monitor().Varz()
	return &sysStats{
		Start: s.start, Mem: v.Mem, Cores: v.Cores, CPU: v.CPU, Connections: v.Connections,
		TotalConnections: v.TotalConnections, ActiveAccounts: len(s.live.Load().auth.accounts),
		NumSubs: v.Subscriptions, Sent: sysMsgBytes{v.OutMsgs, v.OutBytes},
		Received: sysMsgBytes{v.InMsgs, v.InBytes}, SlowConsumers: int64(v.SlowConsumers),
		StaleConnections: int64(v.StaleConnections), MaxProcs: v.MaxProcs,
	}
}

// sysClientInfo is nats-server's ClientInfo, the fields evnats knows.
type sysClientInfo struct {
	Start   *time.Time `json:"start,omitempty"`
	Host    string     `json:"host,omitempty"`
	ID      uint64     `json:"id,omitempty"`
	Account string     `json:"acc,omitempty"`
	User    string     `json:"user,omitempty"`
	Name    string     `json:"name,omitempty"`
	Lang    string     `json:"lang,omitempty"`
	Version string     `json:"ver,omitempty"`
	Server  string     `json:"server,omitempty"`
	Stop    *time.Time `json:"stop,omitempty"`
	Kind    string     `json:"kind,omitempty"`
	Type    string     `json:"client_type,omitempty"`
}

// accountEvent publishes $SYS.ACCOUNT.<account>.CONNECT or .DISCONNECT
// for c, as nats-server's advisories, when a subscriber of the system
// account listens (else it costs one match). Runs in c's context, holding
// no lock.
func (c *client) accountEvent(connect bool) {
	sys := c.srv.live.Load().auth.sysAcc
	if sys == nil || c.acc == nil {
		return
	}
	kind, typ := "CONNECT", "io.nats.server.advisory.v1.client_connect"
	if !connect {
		kind, typ = "DISCONNECT", "io.nats.server.advisory.v1.client_disconnect"
	}
	subj := "$SYS.ACCOUNT." + c.acc.name + "." + kind
	r := sys.sl.Match(subj)
	if r.Empty() {
		return
	}
	now := time.Now().UTC()
	start := c.start.UTC()
	ci := sysClientInfo{
		Start: &start, Host: c.ip, ID: c.id, Account: c.acc.name, User: c.user,
		Name: c.opts.Name, Lang: c.opts.Lang, Version: c.opts.Version, Server: c.srv.opts.ServerName,
		Kind: "Client", Type: "nats",
	}
	ev := struct {
		Type     string        `json:"type"`
		ID       string        `json:"id"`
		Time     time.Time     `json:"timestamp"`
		Server   sysServerInfo `json:"server"`
		Client   sysClientInfo `json:"client"`
		Sent     *sysMsgBytes  `json:"sent,omitempty"`
		Received *sysMsgBytes  `json:"received,omitempty"`
		Reason   string        `json:"reason,omitempty"`
	}{Type: typ, ID: nuid.Next(), Time: now, Client: ci,
		Server: sysServerInfo{Name: c.srv.opts.ServerName, Host: c.srv.opts.Host, ID: c.srv.id, Version: Version, JetStream: c.srv.js != nil, Time: now}}
	if !connect {
		ev.Client.Stop = &now
		ev.Sent, ev.Received = &sysMsgBytes{}, &sysMsgBytes{}
		ev.Reason = "Client Closed"
	}
	b, err := json.Marshal(&ev)
	if err != nil {
		return
	}
	c.srv.deliverMatched(r, subj, "", nil, b)
}

// answerClaims answers the resolver's lookups, lists and deletes, and
// reports whether r was one of them.
func (s *Server) answerClaims(sys *account, r sysReq) bool {
	switch r.endpoint {
	case "CLAIMS.LOOKUP": // the JWT itself; empty: none
		s.deliverMatched(sys.sl.Match(r.reply), r.reply, "", nil, []byte(s.claimsLookup(r.acc)))
	case "CLAIMS.LIST":
		b, _ := json.Marshal(&sysAPIResponse{Server: s.sysInfo(), Data: s.claimsList()})
		s.deliverMatched(sys.sl.Match(r.reply), r.reply, "", nil, b)
	case "CLAIMS.DELETE":
		issuer, msg, err := s.claimsDelete(r.body)
		if err != nil {
			msg = "delete accounts request by " + issuer + " failed"
			s.Errorf("%s - %v", msg, err)
		}
		s.answerClaimStatus(sys, r.reply, "", msg, err)
	default:
		return false
	}
	return true
}

// answerClaimsUpdate applies a pushed account JWT and answers as
// nats-server does (ServerAPIClaimUpdateResponse).
func (s *Server) answerClaimsUpdate(sys *account, r sysReq) {
	pub, err := s.claimsUpdate(r.acc, r.body)
	var verr *claimsInvalid
	if errors.As(err, &verr) {
		s.Errorf("jwt validation failed - %s - %v", pub, err)
		s.answerClaimStatus(sys, r.reply, pub, "jwt validation failed", err)
		return
	}
	if err != nil {
		s.Errorf("jwt update resulted in error - %s - %v", pub, err)
	}
	s.answerClaimStatus(sys, r.reply, pub, "jwt updated", err)
}

// answerClaimStatus answers a claims update or delete as nats-server
// does (ServerAPIClaimUpdateResponse): msg with code 200, or err (its
// description after "jwt update resulted in error" for an update).
func (s *Server) answerClaimStatus(sys *account, reply, pub, msg string, err error) {
	if reply == "" {
		return
	}
	type status struct {
		Account     string `json:"account,omitempty"`
		Code        int    `json:"code"`
		Message     string `json:"message,omitempty"`
		Description string `json:"description,omitempty"`
	}
	resp := struct {
		Server *sysServerInfo `json:"server"`
		Data   *status        `json:"data,omitempty"`
		Error  *status        `json:"error,omitempty"`
	}{Server: &sysServerInfo{Name: s.opts.ServerName, Host: s.opts.Host, ID: s.id, Version: Version, Time: time.Now().UTC()}}
	switch {
	case err == nil:
		resp.Data = &status{Account: pub, Code: 200, Message: msg}
	case msg == "jwt updated":
		resp.Error = &status{Account: pub, Code: 500, Description: "jwt update resulted in error - " + err.Error()}
	default:
		resp.Error = &status{Account: pub, Code: 500, Description: msg + " - " + err.Error()}
	}
	b, _ := json.Marshal(&resp)
	s.deliverMatched(sys.sl.Match(reply), reply, "", nil, b)
}

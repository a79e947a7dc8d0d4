package loop

// Concurrency: Reload runs on the caller's goroutine (cmd/evnats's signal
// loop), one at a time under reloadMu. What it changes is published as a
// new *liveOpts that readers load atomically, and by the logger's own
// lock; each connection's permissions are swapped in the context that
// owns the connection (eachClient).

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/evnats/evnats/codec"
)

// liveOpts are the settings a reload may change; a reload replaces the
// whole value, so a reader that loads it once sees one configuration.
type liveOpts struct {
	maxConnections   int
	maxSubscriptions int
	maxPayload       int // for connections accepted after the reload
	maxControlLine   int // likewise
	maxPingsOut      int
	pingInterval     time.Duration
	authTimeout      time.Duration
	auth             *authConfig
}

func liveOf(o *Options, a *authConfig) *liveOpts {
	return &liveOpts{
		maxConnections: o.MaxConnections, maxSubscriptions: o.MaxSubscriptions,
		maxPayload: o.MaxPayload, maxControlLine: o.MaxControlLine,
		maxPingsOut: o.MaxPingsOut, pingInterval: o.PingInterval,
		authTimeout: o.AuthTimeout, auth: a,
	}
}

// reloadable are the Options fields Reload applies; a change to any other
// field refuses the reload. PidFile and ConfigFile are cmd/evnats's own,
// LogWriter and JetStreamFS are for tests.
var reloadable = map[string]bool{
	"MaxConnections": true, "MaxSubscriptions": true, "MaxPayload": true, "MaxControlLine": true,
	"PingInterval": true, "MaxPingsOut": true, "AuthTimeout": true,
	"Token": true, "Username": true, "Password": true, "Users": true,
	"Accounts": true, "NoAuthUser": true, "Mappings": true, "ResolverPreload": true,
	"Debug": true, "Trace": true, "LogFile": true, "LogSizeLimit": true, "LogMaxFiles": true,
	"NoLogTime": true, "LogTimeUTC": true, "Syslog": true, "RemoteSyslog": true,
	"PidFile": true, "ConfigFile": true, "LogWriter": true, "JetStreamFS": true,
}

// configKeys names Options fields as the configuration file does, for
// the refusal message; a field not here is named as it is.
var configKeys = map[string]string{
	"ServerName": "server_name", "Host": "host", "Port": "port", "HTTPPort": "http_port",
	"HTTPSPort": "https_port", "HTTPHost": "http", "MaxClosedClients": "max_closed_clients",
	"HTTPBasePath": "http_base_path",
	"Loops":        "loops", "IO": "io", "MaxPending": "max_pending", "WriteDeadline": "write_deadline",
	"FlowHighWater": "flow_high_water", "FlowLowWater": "flow_low_water",
	"FlowStallWindow": "flow_stall_window", "LameDuckDuration": "lame_duck_duration",
	"LameDuckGrace": "lame_duck_grace_period", "JetStream": "jetstream", "JetStreamDomain": "jetstream domain",
	"StoreDir": "jetstream store_dir", "JetStreamSync": "jetstream sync_interval",
	"JetStreamMaxMemory": "jetstream max_memory_store", "JetStreamMaxStore": "jetstream max_file_store",
	"MQTTHost": "mqtt host", "MQTTPort": "mqtt port", "MQTTTLS": "mqtt tls",
	"MQTTMaxSessionQueueMsgs": "mqtt max_session_queue_msgs", "MQTTMaxSessionQueueBytes": "mqtt max_session_queue_bytes",
	"MQTTMaxRetainedMsgs": "mqtt max_retained_msgs", "MQTTMaxRetainedBytes": "mqtt max_retained_bytes",
	"TLS": "tls", "Websocket": "websocket",
	"MaxConnections": "max_connections", "MaxSubscriptions": "max_subscriptions",
	"MaxPayload": "max_payload", "MaxControlLine": "max_control_line",
	"PingInterval": "ping_interval", "MaxPingsOut": "ping_max",
	"AuthTimeout": "authorization timeout", "Token": "authorization token",
	"Username": "authorization user", "Password": "authorization password",
	"Users": "authorization users", "Accounts": "accounts", "NoAuthUser": "no_auth_user",
	"SystemAccount": "system_account", "Operators": "operator", "Resolver": "resolver", "ResolverDir": "resolver dir", "Mappings": "mappings",
	"ResolverAllowDelete": "resolver allow_delete", "ResolverHardDelete": "resolver hard_delete",
	"ResolverPreload": "resolver_preload", "Debug": "debug", "Trace": "trace",
	"LogFile": "log_file", "LogSizeLimit": "log_size_limit", "LogMaxFiles": "logfile_max_num",
	"NoLogTime": "logtime", "LogTimeUTC": "logtime_utc", "Syslog": "syslog",
	"RemoteSyslog": "remote_syslog", "PidFile": "pid_file", "ConfigFile": "config file",
	"LeafRemotes": "leafnodes remotes", "LeafReconnect": "leafnodes reconnect",
	"LeafHost": "leafnodes host", "LeafPort": "leafnodes port", "LeafUsername": "leafnodes authorization user",
	"LeafPassword": "leafnodes authorization password", "LeafAuthTimeout": "leafnodes authorization timeout",
	"LeafAccount": "leafnodes authorization account", "LeafNkey": "leafnodes authorization nkey",
	"LeafUsers":       "leafnodes authorization users",
	"LeafCompression": "leafnodes compression", "LeafTLS": "leafnodes tls",
}

// Reload applies o, the configuration read again (flags merged), to the
// running server without dropping clients: limits (max_connections,
// max_subscriptions, ping_interval, ping_max, authorization timeout;
// max_payload and max_control_line for connections accepted from now on),
// authorization (token, user/password, users and their permissions),
// leafnodes remotes (added and removed, when leaf nodes are open),
// logging (debug, trace, log file, its rotation, timestamps, syslog), and
// TLS certificates, read again from the same files. A connected client
// whose credentials no longer pass is closed with "Authorization
// Violation"; one that stays gets its user's new permissions, and its
// subscriptions they no longer allow are removed with a permissions
// error, as nats-server does. If o changes anything else, nothing is
// applied and the error names every such setting.
func (s *Server) Reload(o Options) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	given := o
	o.setDefaults()
	if o.LogWriter == nil {
		o.LogWriter = s.opts.LogWriter
	}
	// Settings are compared as given, before defaults, so that a setting
	// derived from another (flow_high_water from max_pending) is not
	// named as changed.
	if fixed := s.fixedChanges(&given); len(fixed) > 0 {
		for i, f := range fixed {
			fixed[i] = keyName(f)
		}
		them := "them"
		if len(fixed) == 1 {
			them = "it"
		}
		return fmt.Errorf("config reload not supported for %s: restart the server to change %s",
			strings.Join(fixed, ", "), them)
	}
	ac, err := s.checkAuthLocked(&o)
	if err != nil {
		return err
	}
	applyLeaf, err := s.prepareLeafLocked(&o, ac)
	if err != nil {
		return err
	}
	if err := s.log.configure(logConfigOf(&o), o.Debug, o.Trace); err != nil {
		return err
	}
	s.swapAuthLocked(&o, ac)
	applyLeaf() // after the accounts: a new remote binds to a new account
	if err := s.ReloadTLS(); err != nil {
		s.Errorf("reload: %v; keeping the certificates in use", err)
	}
	s.cfgTime.Store(time.Now().UnixNano())
	changed := diffFields(&s.inForce, &given)
	for i, f := range changed {
		changed[i] = keyName(f)
	}
	s.inForce = given
	if len(changed) == 0 {
		s.Noticef("Reloaded server configuration: no changes")
	} else {
		s.Noticef("Reloaded server configuration: %s", strings.Join(changed, ", "))
	}
	return nil
}

// leafReloader is loop/leaf's manager when leaf nodes are open: it
// takes a new list of remotes on reload.
type leafReloader interface {
	PrepareRemotes(remotes []LeafRemote) (apply func(), err error)
}

func (s *Server) leafReloader() leafReloader {
	lr, _ := s.leaf.(leafReloader)
	return lr
}

// prepareLeafLocked checks o's leafnodes remotes (each account among
// ac's) and returns what applies them; a no-op without leaf nodes.
// Caller holds reloadMu.
func (s *Server) prepareLeafLocked(o *Options, ac *authConfig) (func(), error) {
	lr := s.leafReloader()
	if lr == nil {
		return func() {}, nil
	}
	for _, r := range o.LeafRemotes {
		if r.Account != "" && r.Account != globalAccount && ac.accounts[r.Account] == nil {
			return nil, fmt.Errorf("cannot find local account %q specified in leafnode remote", r.Account)
		}
	}
	return lr.PrepareRemotes(o.LeafRemotes)
}

// checkAuthLocked builds the authorization and accounts o describes,
// refusing what cannot change while running. Caller holds reloadMu.
func (s *Server) checkAuthLocked(o *Options) (*authConfig, error) {
	ac, err := newAuthConfig(o, s.live.Load().auth, s.gacc)
	if err != nil {
		return nil, err
	}
	if jsAccounts(s.live.Load().auth.accounts) != jsAccounts(ac.accounts) {
		return nil, fmt.Errorf("config reload not supported for accounts jetstream: restart the server to change it")
	}
	return ac, nil
}

// swapAuthLocked makes o's settings, with ac, the live ones: imports
// follow, and connected clients are checked against ac. Caller holds
// reloadMu.
func (s *Server) swapAuthLocked(o *Options, ac *authConfig) {
	old := s.live.Swap(liveOf(o, ac))
	setMappings(ac.accounts)
	s.liveSrc = *o
	s.accountSysImports(ac.accounts, ac.sysAcc)
	// Imports change as one, and only when the configuration changed
	// them: the old ones go, the new ones come (a message published in
	// between crosses no account).
	if !sameImports(old.auth.accounts, ac.accounts) {
		for _, undo := range s.importUndo {
			undo()
		}
		s.importUndo = s.installImports(ac.accounts)
	}
	if !reflect.DeepEqual(old.auth.users, ac.users) || !reflect.DeepEqual(old.auth.nkeys, ac.nkeys) ||
		old.auth.noAuth != ac.noAuth && !reflect.DeepEqual(old.auth.noAuth, ac.noAuth) ||
		old.auth.required != ac.required || old.auth.token != ac.token || old.auth.user != ac.user ||
		old.auth.pass != ac.pass || old.auth.certMap != ac.certMap || ac.op != nil || old.auth.op != nil ||
		!reflect.DeepEqual(accountLimits(old.auth), accountLimits(ac)) {
		kick := s.overConnLimit(ac)
		s.tr.eachClient(func(c *client) { c.reauthorize(old.auth, ac, kick[c]) })
	}
	if t, ok := s.leaf.(interface {
		TrimLeaves(limit func(account string) int)
	}); ok &&
		!reflect.DeepEqual(accountLimits(old.auth), accountLimits(ac)) {
		t.TrimLeaves(func(name string) int {
			if sp := ac.accounts[name]; sp != nil {
				return ac.limitsOf(sp.acc).MaxLeafNodes
			}
			return -1
		})
	}
}

// accountLimits is every account's limits in a, by name.
func accountLimits(a *authConfig) map[string]AccountLimits {
	m := make(map[string]AccountLimits, len(a.accounts))
	for name, sp := range a.accounts {
		m[name] = a.limitsOf(sp.acc)
	}
	return m
}

// overConnLimit picks the connections that are past their account's
// connection limit in a (a lowered limit): the newest of each account,
// as nats-server keeps the oldest.
func (s *Server) overConnLimit(a *authConfig) map[*client]bool {
	over := false
	for _, sp := range a.accounts {
		if max := a.limitsOf(sp.acc).MaxConnections; max >= 0 && sp.acc.conns.Load() > int64(max) {
			over = true
		}
	}
	if !over {
		return nil
	}
	var mu sync.Mutex
	byAcc := map[*account][]*client{}
	s.tr.eachClient(func(c *client) {
		c.t.outLock()
		counted := c.accCounted && !c.closed
		c.t.outUnlock()
		if counted {
			mu.Lock()
			byAcc[c.acc] = append(byAcc[c.acc], c)
			mu.Unlock()
		}
	})
	kick := map[*client]bool{}
	for acc, cs := range byAcc {
		max := a.limitsOf(acc).MaxConnections
		if max < 0 || len(cs) <= max {
			continue
		}
		sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
		for _, c := range cs[max:] {
			kick[c] = true
		}
	}
	return kick
}

// applyAuthLocked takes o's accounts again (a claims update changed the
// resolver directory). Caller holds reloadMu.
func (s *Server) applyAuthLocked(o *Options) error {
	ac, err := s.checkAuthLocked(o)
	if err != nil {
		return err
	}
	s.swapAuthLocked(o, ac)
	return nil
}

// ConfigLoadTime is when the options in force were loaded: the start, or
// the last successful Reload.
func (s *Server) ConfigLoadTime() time.Time { return time.Unix(0, s.cfgTime.Load()) }

// fixedChanges names the settings o changes that Reload cannot apply.
func (s *Server) fixedChanges(o *Options) []string {
	var fixed []string
	for _, f := range diffFields(&s.started, o) {
		if f == "LeafRemotes" && s.leafReloader() != nil {
			continue // loop/leaf adds and removes remotes (PrepareRemotes)
		}
		if !reloadable[f] {
			fixed = append(fixed, f)
		}
	}
	return fixed
}

// diffFields names the fields that differ between a and b as the
// configuration file does (configKeys), or by their Go name.
func diffFields(a, b *Options) []string {
	var names []string
	va, vb := reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem()
	for i := range va.NumField() {
		f := va.Type().Field(i).Name
		if f == "LogWriter" || f == "JetStreamFS" || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		names = append(names, f)
	}
	return names
}

// keyName is how the configuration file names an Options field.
func keyName(f string) string {
	if k, ok := configKeys[f]; ok {
		return k
	}
	return f
}

// reauthorize checks, after a reload changed authorization from old to
// a, that c may stay, and gives it its user's new permissions. Only NATS
// connections are checked: an MQTT connection keeps what it logged in
// with (but counts toward its account's max_connections, so it may be
// kicked past a lowered one, without a NATS -ERR), and a WebSocket
// connection under the websocket block's own authorization (which a
// reload does not change) is left alone. Runs in c's context (eachClient).
func (c *client) reauthorize(old, a *authConfig, kick bool) {
	if !c.connected.Load() {
		return
	}
	plugIn := c.sharedProto() != nil
	if kick {
		c.srv.Noticef("client %d (%s): account %q: %s", c.id, c.ip, c.acc.name, errAccountConns)
		if plugIn {
			c.setReason(closeReason(errAccountConns))
			c.t.closeConn()
			return
		}
		c.closeWithErr(errAccountConns)
		return
	}
	if plugIn {
		return
	}
	if c.ws != nil && c.ws.srv.auth != nil {
		c.applyLimits(nil, c.srv.live.Load())
		c.closeOverSubs()
		return
	}
	c.t.outLock() // deliveries read opts too; a second CONNECT writes it under the lock
	opts := c.opts
	c.t.outUnlock()
	u, ok := a.readmit(old, c.user, &opts)
	if ok {
		acc := c.srv.gacc
		if u != nil && u.acc != nil {
			acc = u.acc
		}
		ok = acc == c.acc // a user moved to another account logs in again
	}
	if !ok {
		c.srv.Noticef("client %d (%s): authorization violation after reload", c.id, c.ip)
		c.closeWithErr("Authorization Violation")
		return
	}
	var p *permissions
	if u != nil && u.perms != nil {
		p = newPermissions(u.perms)
	}
	c.perms.Store(p)
	if u != nil {
		c.who = u
	}
	c.applyLimits(u, c.srv.live.Load())
	if c.closeOverSubs() {
		return
	}
	c.t.outLock()
	defer c.t.outUnlock()
	for _, s := range c.subs {
		if p != nil && !p.canSubscribe(s.Subject, s.Queue) {
			c.removeSub(s)
			c.out.write(codec.AppendErr(c.scratch[:0], `Permissions Violation for Subscription to "`+s.Subject+`"`))
			c.t.flushSoon()
		}
	}
}

// closeOverSubs closes c when it holds more subscriptions than its
// limits now allow (an account's limit lowered), as nats-server does.
func (c *client) closeOverSubs() bool {
	max := subsLimit(c.srv.live.Load().maxSubscriptions, c.maxSubs)
	c.t.outLock()
	n := len(c.subs)
	c.t.outUnlock()
	if max < 0 || n <= max {
		return false
	}
	c.srv.Noticef("client %d (%s): maximum subscriptions exceeded", c.id, c.ip)
	c.closeWithErr("maximum subscriptions exceeded")
	return true
}

// readmit reports whether a client admitted under old still passes a,
// with its user's entry in a. Plain secrets are checked again against
// what the client sent; a bcrypt one is not run again on the loop but
// passes only if the configuration kept it unchanged for this user.
func (a *authConfig) readmit(old *authConfig, user string, o *connectOpts) (*userEntry, bool) {
	switch {
	case !a.required:
		return nil, true
	case a.op != nil: // the nonce was checked at CONNECT; the JWT is checked again
		uc, ac, ok := a.op.userClaims(a, o)
		if !ok {
			return nil, false
		}
		return a.op.entry(a, uc, ac), true
	case a.certMap:
		u := a.users[user]
		return u, u != nil
	case a.token != "":
		return nil, equalSecret(o.Token, a.token)
	case a.user != "":
		kept := old.required && old.user == a.user && old.pass == a.pass
		return nil, o.User == a.user && passStill(o.Pass, a.pass, kept)
	case o.Nkey != "": // its signature was checked at CONNECT
		u := a.nkeys[o.Nkey]
		return u, u != nil
	}
	if u := a.noAuthFor(o); u != nil {
		return u, true
	}
	u := a.users[o.User]
	if u == nil {
		return nil, false
	}
	ou := old.users[o.User]
	kept := old.required && ou != nil && ou.pass == u.pass
	return u, passStill(o.Pass, u.pass, kept)
}

// passStill checks a client's password against the configured one; a
// bcrypt hash passes when kept (unchanged since the client logged in).
func passStill(given, want string, kept bool) bool {
	if isBcrypt(want) {
		return kept
	}
	return equalSecret(given, want)
}

// jsAccounts describes which accounts have JetStream and their limits:
// the Managers started with the server, which a reload keeps.
func jsAccounts(specs map[string]*accountSpec) string {
	var b strings.Builder
	for _, name := range sortedKeys(specs) {
		if a := specs[name].cfg; a != nil && a.JetStream {
			fmt.Fprintf(&b, "%s:%+v;", a.Name, a.JetStreamLimits)
		}
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// sameImports reports whether two loads give the same accounts the same
// imports and exports, so that the installed imports can stay.
func sameImports(a, b map[string]*accountSpec) bool {
	if len(a) != len(b) {
		return false
	}
	for name, sa := range a {
		sb := b[name]
		if sb == nil || sa.acc != sb.acc || !reflect.DeepEqual(sa.imports, sb.imports) || !reflect.DeepEqual(sa.exports, sb.exports) {
			return false
		}
	}
	return true
}

package loop

// Concurrency: as config.go, once per load on the caller's goroutine.

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/evnats/evnats/router"
)

// The blocks of a configuration file: for each, the keys evnats takes
// (with nats-server's aliases) and the keys nats-server takes that evnats
// does not serve yet, so that config errors tell a typo from a missing
// feature. Names as nats-server 2.15 spells them.

func alias(keys map[string]setter, set setter, names ...string) {
	for _, n := range names {
		keys[n] = set
	}
}

func setStr(p *string) setter { return func(v any) (err error) { *p, err = str(v); return } }
func setInt(p *int) setter    { return func(v any) (err error) { *p, err = integer(v); return } }
func setNonNeg(p *int) setter { return func(v any) (err error) { *p, err = nonNegative(v); return } }
func setBool(p *bool) setter  { return func(v any) (err error) { *p, err = boolean(v); return } }
func setDur(p *time.Duration) setter {
	return func(v any) (err error) { *p, err = duration(v); return }
}
func setList(p *[]string) setter { return func(v any) (err error) { *p, err = strList(v); return } }
func setTLS(p **TLSOptions) setter {
	return func(v any) (err error) { *p, err = parseTLS(plain(v)); return }
}
func setListen(h *string, p *int) setter { return func(v any) error { return parseListen(v, h, p) } }
func setSize(p *int64) setter {
	return func(v any) error {
		n, err := nonNegative(v)
		*p = int64(n)
		return err
	}
}

// topBlock is the top level of the file.
func (w *cfgWalker) topBlock(o *Options) block {
	k := map[string]setter{}
	alias(k, setStr(&o.ServerName), "server_name")
	alias(k, setStr(&o.Host), "host", "net")
	alias(k, setInt(&o.Port), "port")
	alias(k, setListen(&o.Host, &o.Port), "listen")
	alias(k, setInt(&o.HTTPPort), "http_port", "monitor_port")
	alias(k, setListen(&o.HTTPHost, &o.HTTPPort), "http")
	alias(k, setInt(&o.HTTPSPort), "https_port")
	alias(k, setStr(&o.HTTPBasePath), "http_base_path")
	alias(k, setListen(&o.HTTPHost, &o.HTTPSPort), "https")
	alias(k, setInt(&o.Loops), "loops")
	alias(k, setStr(&o.IO), "io")
	alias(k, setInt(&o.MaxPayload), "max_payload")
	alias(k, setInt(&o.MaxControlLine), "max_control_line")
	alias(k, setInt(&o.MaxPending), "max_pending")
	alias(k, setInt(&o.MaxConnections), "max_connections", "max_conn")
	alias(k, setInt(&o.MaxSubscriptions), "max_subscriptions", "max_subs")
	alias(k, setInt(&o.MaxClosedClients), "max_closed_clients")
	alias(k, setDur(&o.PingInterval), "ping_interval")
	alias(k, setInt(&o.MaxPingsOut), "ping_max")
	alias(k, setDur(&o.WriteDeadline), "write_deadline")
	alias(k, setInt(&o.FlowHighWater), "flow_high_water")
	alias(k, setInt(&o.FlowLowWater), "flow_low_water")
	alias(k, setDur(&o.FlowStallWindow), "flow_stall_window")
	alias(k, setDur(&o.LameDuckDuration), "lame_duck_duration")
	alias(k, setDur(&o.LameDuckGrace), "lame_duck_grace_period")
	alias(k, setBool(&o.Debug), "debug")
	alias(k, setBool(&o.Trace), "trace")
	alias(k, func(v any) error { b, err := boolean(v); o.NoLogTime = !b; return err }, "logtime")
	alias(k, setBool(&o.LogTimeUTC), "logtime_utc")
	alias(k, setStr(&o.LogFile), "log_file", "logfile")
	alias(k, setSize(&o.LogSizeLimit), "log_size_limit", "logfile_size_limit")
	alias(k, setNonNeg(&o.LogMaxFiles), "logfile_max_num", "log_max_num")
	alias(k, setBool(&o.Syslog), "syslog")
	alias(k, setStr(&o.RemoteSyslog), "remote_syslog")
	alias(k, setStr(&o.PidFile), "pid_file", "pidfile")
	alias(k, setStr(&o.StoreDir), "store_dir", "storedir")
	alias(k, w.sub(w.authBlock("authorization", o)), "authorization")
	alias(k, w.accounts(o), "accounts")
	alias(k, setStr(&o.NoAuthUser), "no_auth_user")
	alias(k, setStr(&o.SystemAccount), "system_account", "system")
	alias(k, w.operators(o), "operator", "operators", "root_operators", "root_operator", "roots", "root")
	alias(k, func(v any) error {
		switch t := v.(type) {
		case string:
			o.Resolver = t
			return nil
		case map[string]any:
			rk := map[string]setter{}
			alias(rk, setStr(&o.Resolver), "type")
			alias(rk, setStr(&o.ResolverDir), "dir")
			alias(rk, setBool(&o.ResolverAllowDelete), "allow_delete")
			alias(rk, setBool(&o.ResolverHardDelete), "hard_delete")
			w.walk(block{path: "resolver", keys: rk, native: []string{
				"interval", "limit", "timeout",
			}}, t)
			return nil
		}
		return fmt.Errorf("want MEMORY or a block {type: full, dir: ...}, got %s", kind(v))
	}, "resolver", "account_resolver", "accounts_resolver")
	alias(k, func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a block of account public key: JWT, got %s", kind(v))
		}
		o.ResolverPreload = make(map[string]string, len(m))
		for key, e := range m {
			s, err := str(e)
			if err != nil {
				w.add(e, fmt.Sprintf("%q: %v", "resolver_preload."+key, err))
				continue
			}
			o.ResolverPreload[key] = s
		}
		return nil
	}, "resolver_preload")
	alias(k, w.jetStream(o), "jetstream")
	alias(k, w.sub(w.mqttBlock(o)), "mqtt")
	alias(k, w.sub(w.leafBlock(o)), "leafnodes", "leaf")
	alias(k, setTLS(&o.TLS), "tls")
	alias(k, w.mappings(&o.Mappings), "mappings", "maps")
	alias(k, w.sub(w.websocketBlock(&o.Websocket)), "websocket", "ws")
	return block{keys: k, native: []string{
		"client_advertise", "trace_verbose", "trace_headers",
		"disable_sublist_cache", "no_sublist_cache", "default_sentinel",
		"cluster", "gateway",
		"ports_file_dir", "prof_port", "prof_block_rate", "proxy_protocol",
		"max_traced_msg_len", "max_sub_tokens", "max_subscription_tokens", "ocsp",
		"allow_non_tls", "write_timeout", "resolver_tls", "resolver_pinned_accounts",
		"no_system_account", "no_system",
		"no_sys_acc", "no_header_support", "trusted", "trusted_keys",
		"connect_error_reports", "reconnect_error_reports",
	}}
}

// jetStream accepts `jetstream: enabled|disabled|true|false` or a block
// with store_dir, max_memory_store, max_file_store, sync_interval
// ("always" for an fsync per write) and enabled.
func (w *cfgWalker) jetStream(o *Options) setter {
	k := map[string]setter{}
	alias(k, setStr(&o.StoreDir), "store_dir", "store", "storedir")
	alias(k, setSize(&o.JetStreamMaxMemory), "max_memory_store", "max_mem_store", "max_mem")
	alias(k, setSize(&o.JetStreamMaxStore), "max_file_store", "max_file")
	alias(k, func(v any) (err error) {
		if s, ok := v.(string); ok && s == "always" {
			o.JetStreamSync.Always = true
			return nil
		}
		o.JetStreamSync.Interval, err = duration(v)
		return err
	}, "sync_interval", "sync")
	alias(k, setBool(&o.JetStream), "enabled", "enable")
	alias(k, func(v any) error {
		d, err := str(v)
		if err == nil {
			err = validDomain(d)
		}
		o.JetStreamDomain = d
		return err
	}, "domain")
	b := block{path: "jetstream", keys: k, native: []string{
		"disabled", "disable", "strict", "key", "ek", "encryption_key", "prev_key",
		"prev_ek", "prev_encryption_key", "cipher", "extension_hint", "limits", "tpm",
		"unique_tag", "max_outstanding_catchup", "max_buffered_size", "max_buffered_msgs",
		"request_queue_limit", "info_queue_limit", "meta_compact", "meta_compact_size",
		"meta_compact_sync", "max_concurrent_io",
	}}
	return func(v any) error {
		switch t := v.(type) {
		case bool:
			o.JetStream = t
			return nil
		case string:
			switch t {
			case "enabled", "enable", "true":
				o.JetStream = true
			case "disabled", "disable", "false":
				o.JetStream = false
			default:
				return fmt.Errorf("want enabled, disabled, true, false or a block, got %q", t)
			}
			return nil
		case map[string]any:
			o.JetStream = true
			w.walk(b, t)
			return nil
		}
		return fmt.Errorf("want enabled, disabled, true, false or a block, got %s", kind(v))
	}
}

// listenerKeys are a listener block's address keys: host (net), port and
// listen ("host:port").
func listenerKeys(host *string, port *int) map[string]setter {
	k := map[string]setter{}
	alias(k, setStr(host), "host", "net")
	alias(k, setInt(port), "port")
	alias(k, setListen(host, port), "listen")
	return k
}

// mqttBlock: the MQTT listener and its limits.
func (w *cfgWalker) mqttBlock(o *Options) block {
	k := listenerKeys(&o.MQTTHost, &o.MQTTPort)
	alias(k, setNonNeg(&o.MQTTMaxSessionQueueMsgs), "max_session_queue_msgs")
	alias(k, setNonNeg(&o.MQTTMaxSessionQueueBytes), "max_session_queue_bytes")
	alias(k, setNonNeg(&o.MQTTMaxRetainedMsgs), "max_retained_msgs")
	alias(k, setNonNeg(&o.MQTTMaxRetainedBytes), "max_retained_bytes")
	alias(k, setTLS(&o.MQTTTLS), "tls")
	return block{path: "mqtt", keys: k, native: []string{
		"authorization", "authentication", "no_auth_user", "ack_wait", "ackwait",
		"js_api_timeout", "api_timeout", "max_ack_pending", "max_pending", "max_inflight",
		"js_domain", "stream_replicas", "consumer_replicas", "consumer_memory_storage",
		"consumer_inactive_threshold", "consumer_auto_cleanup", "reject_qos2_publish",
		"downgrade_qos2_subscribe",
	}}
}

// websocketBlock: the WebSocket listener.
func (w *cfgWalker) websocketBlock(ws *WebsocketOptions) block {
	k := listenerKeys(&ws.Host, &ws.Port)
	alias(k, setBool(&ws.NoTLS), "no_tls")
	alias(k, setTLS(&ws.TLS), "tls")
	alias(k, setBool(&ws.SameOrigin), "same_origin")
	alias(k, setList(&ws.AllowedOrigins), "allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin")
	alias(k, setDur(&ws.HandshakeTimeout), "handshake_timeout")
	alias(k, setBool(&ws.Compression), "compression", "compress")
	ak := map[string]setter{}
	alias(ak, setStr(&ws.Username), "user", "username")
	alias(ak, setStr(&ws.Password), "password", "pass")
	alias(ak, setStr(&ws.Token), "token")
	alias(ak, setDur(&ws.AuthTimeout), "timeout")
	auth := block{path: "websocket.authorization", keys: ak, native: []string{
		"users", "default_permission", "default_permissions", "permissions", "auth_callout", "auth_hook", "proxy_required",
	}}
	alias(k, w.sub(auth), "authorization", "authentication")
	return block{path: "websocket", keys: k, native: []string{
		"advertise", "jwt_cookie", "user_cookie", "pass_cookie", "token_cookie",
		"no_auth_user", "headers", "ping_interval",
	}}
}

// authBlock: the server's authorization.
func (w *cfgWalker) authBlock(path string, o *Options) block {
	k := map[string]setter{}
	alias(k, setStr(&o.Token), "token")
	alias(k, setStr(&o.Username), "user", "username")
	alias(k, setStr(&o.Password), "password", "pass")
	alias(k, setDur(&o.AuthTimeout), "timeout")
	alias(k, func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of users, got %s", kind(v))
		}
		o.Users = o.Users[:0]
		for i, e := range list {
			m, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("%q: want a block, got %s", fmt.Sprintf("%s.users[%d]", path, i), kind(e)))
				continue
			}
			u := &User{}
			w.walk(w.userBlock(fmt.Sprintf("%s.users[%d]", path, i), u), m)
			o.Users = append(o.Users, u)
		}
		return nil
	}, "users")
	alias(k, func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of nkey users, got %s", kind(v))
		}
		for i, e := range list {
			m, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("%q: want a block, got %s", fmt.Sprintf("%s.nkeys[%d]", path, i), kind(e)))
				continue
			}
			u := &User{}
			w.walk(w.userBlock(fmt.Sprintf("%s.nkeys[%d]", path, i), u), m)
			o.Users = append(o.Users, u)
		}
		return nil
	}, "nkeys")
	return block{path: path, keys: k, native: []string{
		"default_permission", "default_permissions", "permissions", "auth_callout", "auth_hook", "proxy_required",
	}}
}

// userBlock: one entry of a users list.
func (w *cfgWalker) userBlock(path string, u *User) block {
	k := map[string]setter{}
	alias(k, setStr(&u.Username), "user", "username")
	alias(k, setStr(&u.Password), "password", "pass")
	alias(k, setStr(&u.Nkey), "nkey")
	alias(k, func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a block, got %s", kind(v))
		}
		u.Permissions = &Permissions{}
		w.walk(w.permsBlock(path+".permissions", u.Permissions), m)
		return nil
	}, "permissions", "permission", "authorization")
	return block{path: path, keys: k, native: []string{
		"allowed_connection_types", "connection_types", "clients", "proxy_required",
		"issuer", "account", "acc", "auth_users", "xkey", "key", "allowed_accounts",
	}}
}

// permsBlock: a user's publish and subscribe permissions.
func (w *cfgWalker) permsBlock(path string, p *Permissions) block {
	k := map[string]setter{}
	alias(k, func(v any) (err error) { p.Publish, err = parseSubjectPermission(v); return }, "publish", "pub")
	alias(k, func(v any) (err error) { p.Subscribe, err = parseSubjectPermission(v); return }, "subscribe", "sub")
	return block{path: path, keys: k, native: []string{"import", "export", "publish_allow_responses", "allow_responses"}}
}

// nonNegative reads a count or size that may not be negative.
func nonNegative(v any) (int, error) {
	n, err := integer(v)
	if err == nil && n < 0 {
		err = fmt.Errorf("may not be negative: %d", n)
	}
	return n, err
}

// parseSubjectPermission accepts a subject, a list (allow), or {allow, deny}.
func parseSubjectPermission(v any) (*SubjectPermission, error) {
	switch t := bare(v).(type) {
	case string, []any:
		l, err := strList(t)
		return &SubjectPermission{Allow: l}, err
	case map[string]any:
		sp := &SubjectPermission{}
		for k, v := range t {
			l, err := strList(v)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			switch k {
			case "allow":
				sp.Allow = l
			case "deny":
				sp.Deny = l
			default:
				return nil, fmt.Errorf("unknown key %q (want allow or deny)", k)
			}
		}
		return sp, nil
	}
	return nil, fmt.Errorf("want a subject, a list or {allow, deny}, got %s", kind(v))
}

func strList(v any) ([]string, error) {
	switch t := bare(v).(type) {
	case string:
		return []string{t}, nil
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			s, err := str(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string or a list, got %s", kind(v))
}

// parseListen accepts "host:port", ":port" or a port number.
func parseListen(v any, host *string, port *int) error {
	v = bare(v)
	if p, ok := v.(int64); ok {
		*port = int(p)
		return nil
	}
	s, err := str(v)
	if err != nil {
		return fmt.Errorf("want host:port or a port, got %s", kind(v))
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("port %q is not a number", p)
	}
	if h != "" {
		*host = h
	}
	*port = n
	return nil
}

func str(v any) (string, error) {
	if s, ok := bare(v).(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("want a string, got %s", kind(v))
}

func integer(v any) (int, error) {
	if n, ok := bare(v).(int64); ok {
		if int64(int(n)) != n {
			return 0, fmt.Errorf("%d is too large", n)
		}
		return int(n), nil
	}
	return 0, fmt.Errorf("want a number, got %s", kind(v))
}

func boolean(v any) (bool, error) {
	if b, ok := bare(v).(bool); ok {
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %s", kind(v))
}

// duration accepts "2m"-style strings or a number of seconds.
func duration(v any) (time.Duration, error) {
	switch t := bare(v).(type) {
	case string:
		return time.ParseDuration(t)
	case int64:
		if t > int64(time.Duration(1<<63-1)/time.Second) || t < 0 {
			return 0, fmt.Errorf("%d seconds is out of range", t)
		}
		return time.Duration(t) * time.Second, nil
	case float64:
		return time.Duration(t * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("want a duration (\"2s\") or seconds, got %s", kind(v))
}

// leafBlock: leaf-node links: to hubs (leafnodes { remotes [...],
// reconnect }) and from leaves (host, port or listen, authorization with
// user and password, tls, compression).
func (w *cfgWalker) leafBlock(o *Options) block {
	k := listenerKeys(&o.LeafHost, &o.LeafPort)
	alias(k, setDur(&o.LeafReconnect), "reconnect", "reconnect_delay")
	alias(k, setCompression(&o.LeafCompression), "compression")
	alias(k, setTLS(&o.LeafTLS), "tls")
	ak := map[string]setter{}
	alias(ak, setStr(&o.LeafUsername), "user", "username")
	alias(ak, setStr(&o.LeafPassword), "password", "pass")
	alias(ak, setDur(&o.LeafAuthTimeout), "timeout")
	alias(ak, setStr(&o.LeafAccount), "account")
	alias(ak, func(v any) error {
		nk, err := str(v)
		if err != nil {
			return err
		}
		if !nkeys.IsValidPublicUserKey(nk) {
			return errors.New("Not a valid public nkey for leafnode authorization")
		}
		o.LeafNkey = nk
		return nil
	}, "nkey")
	alias(ak, func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("Expected users field to be an array, got %v", plain(v))
		}
		for _, e := range list {
			m, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("Expected user entry to be a map/struct, got %v", plain(e)))
				continue
			}
			var u LeafUser
			uk := map[string]setter{}
			alias(uk, setStr(&u.Username), "user", "username")
			alias(uk, setStr(&u.Password), "password", "pass")
			alias(uk, func(v any) error {
				a, err := str(v)
				if err == nil && a != "" {
					err = validAccountName(a)
				}
				u.Account = a
				return err
			}, "account")
			w.walk(block{path: "leafnodes.authorization.users", keys: uk, native: []string{"proxy_required"}}, m)
			o.LeafUsers = append(o.LeafUsers, u)
		}
		return nil
	}, "users")
	alias(k, w.sub(block{path: "leafnodes.authorization", keys: ak, native: []string{
		"token", "proxy_required",
	}}), "authorization")
	alias(k, func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list of remotes, got %s", kind(v))
		}
		for _, e := range list {
			m, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("leafnodes remote: want a block, got %s", kind(bare(e))))
				continue
			}
			var r LeafRemote
			w.walk(w.leafRemoteBlock(&r), m)
			if len(r.URLs) == 0 {
				w.add(e, "leafnodes remote: url or urls is required")
				continue
			}
			o.LeafRemotes = append(o.LeafRemotes, r)
		}
		return nil
	}, "remotes")
	return block{path: "leafnodes", keys: k, native: []string{
		"advertise", "no_advertise", "min_version", "isolate_leafnode_interest", "tls_handshake_first",
		"write_deadline", "write_timeout",
	}}
}

// leafRemoteBlock is one remote of leafnodes { remotes }.
func (w *cfgWalker) leafRemoteBlock(r *LeafRemote) block {
	k := map[string]setter{}
	addURL := func(v any) error {
		u, err := str(v)
		if err != nil {
			return err
		}
		if err := checkLeafURL(u); err != nil {
			return err
		}
		r.URLs = append(r.URLs, u)
		return nil
	}
	alias(k, addURL, "url")
	alias(k, func(v any) error {
		l, err := strList(v)
		if err != nil {
			return err
		}
		for _, u := range l {
			if err := addURL(u); err != nil {
				return err
			}
		}
		return nil
	}, "urls")
	alias(k, func(v any) error {
		c, err := str(v)
		if err == nil && r.Nkey != "" {
			err = errors.New("Remote leafnode can not have both creds and nkey defined")
		}
		r.Credentials = c
		return err
	}, "credentials", "creds")
	alias(k, func(v any) error {
		nk, err := str(v)
		if err != nil {
			return err
		}
		if pb, _, err := nkeys.DecodeSeed([]byte(nk)); err != nil || pb != nkeys.PrefixByteUser {
			return fmt.Errorf("Remote leafnode nkey is not a valid seed: %q", nk)
		}
		if r.Credentials != "" {
			return errors.New("Remote leafnode can not have both creds and nkey defined")
		}
		r.Nkey = nk
		return nil
	}, "nkey", "seed")
	alias(k, func(v any) error {
		a, err := str(v)
		if err == nil && a != "" {
			err = validAccountName(a)
		}
		r.Account = a
		return err
	}, "account", "local")
	alias(k, setTLS(&r.TLS), "tls")
	setSubjects := func(p *[]string) setter {
		return func(v any) error {
			l, err := strList(v)
			if err != nil {
				if one, serr := str(v); serr == nil {
					l, err = []string{one}, nil
				} else {
					return err
				}
			}
			for _, subj := range l {
				if !router.ValidSubject(subj) {
					return fmt.Errorf("invalid subject %q", subj)
				}
			}
			*p = l
			return nil
		}
	}
	alias(k, setDur(&r.FirstInfoTimeout), "first_info_timeout")
	alias(k, setSubjects(&r.DenyImports), "deny_imports", "deny_import")
	alias(k, setSubjects(&r.DenyExports), "deny_exports", "deny_export")
	alias(k, setCompression(&r.Compression), "compression")
	k["ws_no_masking"] = func(v any) error {
		no, err := boolean(v)
		r.WSMasking = !no
		return err
	}
	return block{path: "leafnodes.remotes", keys: k, native: []string{
		"hub", "ws_compression", "signature_handler", "jetstream_cluster_migrate", "no_randomize",
		"disabled", "proxy", "request_isolation", "local_isolation",
	}}
}

// checkLeafURL validates a remote's URL where it enters: a scheme a leaf
// dials (tls:// for TLS) and a host (the port defaults to 7422).
func checkLeafURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("leafnode url %q: %v", s, err)
	}
	switch u.Scheme {
	case "nats-leaf", "nats", "leafnode", "tls", "ws", "wss":
	default:
		return fmt.Errorf("leafnode url %q: unknown scheme %q", s, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("leafnode url %q: no host", s)
	}
	return nil
}

// setCompression takes an s2 mode as nats-server spells it (a string, a
// bool, or a block with mode).
func setCompression(p *string) setter {
	return func(v any) error {
		if m, ok := v.(map[string]any); ok { // { mode: ..., rtt_thresholds: ... }
			v = bare(m["mode"])
		}
		c, err := str(v)
		if err != nil {
			b, berr := boolean(v)
			if berr != nil {
				return err
			}
			c = map[bool]string{true: "s2_auto", false: "off"}[b]
		}
		switch c {
		case "off", "disabled", "false":
			*p = "off"
		case "", "on", "enabled", "true":
			*p = "s2_auto"
		case "accept", "s2_auto", "s2_uncompressed", "s2_fast", "s2_better", "s2_best":
			*p = c
		default:
			return fmt.Errorf("compression %q: want off, accept, s2_auto, s2_uncompressed, s2_fast, s2_better or s2_best", c)
		}
		return nil
	}
}

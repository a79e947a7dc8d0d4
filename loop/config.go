package loop

// Concurrency: runs once, on the caller's goroutine, to fill Options before
// New; nothing here is shared.

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
)

// ApplyConfigFile reads a configuration file in nats-server's syntax and
// sets the keys evnats supports on o. Unknown keys are an error so that a
// typo does not silently run a different server.
func ApplyConfigFile(o *Options, path string) error {
	m, err := conf.ParseFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return applyConfig(o, m)
}

func applyConfig(o *Options, m map[string]any) error {
	for k, v := range m {
		var err error
		switch k {
		case "server_name":
			o.ServerName, err = str(v)
		case "host", "net":
			o.Host, err = str(v)
		case "port":
			o.Port, err = integer(v)
		case "listen":
			err = parseListen(v, &o.Host, &o.Port)
		case "http_port", "monitor_port":
			o.HTTPPort, err = integer(v)
		case "http":
			var h string
			err = parseListen(v, &h, &o.HTTPPort)
		case "loops":
			o.Loops, err = integer(v)
		case "io":
			o.IO, err = str(v)
		case "max_payload":
			o.MaxPayload, err = integer(v)
		case "max_control_line":
			o.MaxControlLine, err = integer(v)
		case "max_pending":
			o.MaxPending, err = integer(v)
		case "max_connections", "max_conn":
			o.MaxConnections, err = integer(v)
		case "max_subscriptions", "max_subs":
			o.MaxSubscriptions, err = integer(v)
		case "ping_interval":
			o.PingInterval, err = duration(v)
		case "ping_max":
			o.MaxPingsOut, err = integer(v)
		case "write_deadline":
			o.WriteDeadline, err = duration(v)
		case "flow_high_water":
			o.FlowHighWater, err = integer(v)
		case "flow_low_water":
			o.FlowLowWater, err = integer(v)
		case "flow_stall_window":
			o.FlowStallWindow, err = duration(v)
		case "lame_duck_duration":
			o.LameDuckDuration, err = duration(v)
		case "lame_duck_grace_period":
			o.LameDuckGrace, err = duration(v)
		case "debug":
			o.Debug, err = boolean(v)
		case "trace":
			o.Trace, err = boolean(v)
		case "authorization":
			err = parseAuthorization(o, v)
		case "jetstream":
			err = parseJetStream(o, v)
		case "mqtt":
			err = parseMQTT(o, v)
		case "tls":
			o.TLS, err = parseTLS(v)
		case "websocket", "ws":
			err = parseWebsocket(&o.Websocket, v)
		default:
			err = fmt.Errorf("unsupported key")
		}
		if err != nil {
			return fmt.Errorf("config: %q: %w", k, err)
		}
	}
	return nil
}

// parseJetStream accepts `jetstream: enabled|true|false` or a block with
// store_dir, max_memory_store, max_file_store, sync_interval ("always" for
// an fsync per write).
func parseJetStream(o *Options, v any) error {
	switch t := v.(type) {
	case bool:
		o.JetStream = t
		return nil
	case string:
		o.JetStream = t == "enabled" || t == "true"
		return nil
	case map[string]any:
		o.JetStream = true
		for k, v := range t {
			var err error
			switch k {
			case "store_dir", "store":
				o.StoreDir, err = str(v)
			case "max_memory_store", "max_mem":
				var n int
				n, err = integer(v)
				o.JetStreamMaxMemory = int64(n)
			case "max_file_store", "max_file":
				var n int
				n, err = integer(v)
				o.JetStreamMaxStore = int64(n)
			case "sync_interval":
				if s, ok := v.(string); ok && s == "always" {
					o.JetStreamSync.Always = true
				} else {
					o.JetStreamSync.Interval, err = duration(v)
				}
			case "enabled":
				o.JetStream, err = boolean(v)
			default:
				err = fmt.Errorf("unsupported key %q", k)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("want enabled, true/false or a block")
}

// nonNegative reads a count or size that may not be negative.
func nonNegative(v any) (int, error) {
	n, err := integer(v)
	if err == nil && n < 0 {
		err = fmt.Errorf("may not be negative: %d", n)
	}
	return n, err
}

// parseMQTT accepts an mqtt block with host, port or listen, and the
// per-session limits max_session_queue_msgs and max_session_queue_bytes,
// and the server's retained limits max_retained_msgs and max_retained_bytes.
func parseMQTT(o *Options, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("want a block")
	}
	for k, v := range m {
		var err error
		switch k {
		case "host", "net":
			o.MQTTHost, err = str(v)
		case "port":
			o.MQTTPort, err = integer(v)
		case "listen":
			err = parseListen(v, &o.MQTTHost, &o.MQTTPort)
		case "max_session_queue_msgs":
			o.MQTTMaxSessionQueueMsgs, err = nonNegative(v)
		case "max_session_queue_bytes":
			o.MQTTMaxSessionQueueBytes, err = nonNegative(v)
		case "max_retained_msgs":
			o.MQTTMaxRetainedMsgs, err = nonNegative(v)
		case "max_retained_bytes":
			o.MQTTMaxRetainedBytes, err = nonNegative(v)
		case "tls":
			o.MQTTTLS, err = parseTLS(v)
		default:
			err = fmt.Errorf("unsupported key %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseWebsocket accepts a websocket block with nats-server's keys:
// listen or host and port, no_tls, same_origin, allowed_origins,
// handshake_timeout, compression, and authorization (user, password,
// token, timeout).
func parseWebsocket(w *WebsocketOptions, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("want a block")
	}
	for k, v := range m {
		var err error
		switch k {
		case "host", "net":
			w.Host, err = str(v)
		case "port":
			w.Port, err = integer(v)
		case "listen":
			err = parseListen(v, &w.Host, &w.Port)
		case "no_tls":
			w.NoTLS, err = boolean(v)
		case "tls":
			w.TLS, err = parseTLS(v)
		case "same_origin":
			w.SameOrigin, err = boolean(v)
		case "allowed_origins", "allowed_origin", "allow_origins", "allow_origin", "origins", "origin":
			w.AllowedOrigins, err = strList(v)
		case "handshake_timeout":
			w.HandshakeTimeout, err = duration(v)
		case "compression", "compress":
			w.Compression, err = boolean(v)
		case "authorization", "authentication":
			err = parseWSAuth(w, v)
		default:
			err = fmt.Errorf("unsupported key %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// parseWSAuth reads the websocket block's authorization.
func parseWSAuth(w *WebsocketOptions, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("authorization: want a block")
	}
	for k, v := range m {
		var err error
		switch k {
		case "user", "username":
			w.Username, err = str(v)
		case "password", "pass":
			w.Password, err = str(v)
		case "token":
			w.Token, err = str(v)
		case "timeout":
			w.AuthTimeout, err = duration(v)
		default:
			err = fmt.Errorf("authorization: unsupported key %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseAuthorization(o *Options, v any) error {
	m, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("want a map")
	}
	for k, v := range m {
		var err error
		switch k {
		case "token":
			o.Token, err = str(v)
		case "user", "username":
			o.Username, err = str(v)
		case "password", "pass":
			o.Password, err = str(v)
		case "timeout":
			o.AuthTimeout, err = duration(v)
		case "users":
			o.Users, err = parseUsers(v)
		default:
			err = fmt.Errorf("unsupported key %q", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func parseUsers(v any) ([]*User, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("users: want a list")
	}
	var users []*User
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("users: want maps")
		}
		u := &User{}
		for k, v := range m {
			var err error
			switch k {
			case "user", "username":
				u.Username, err = str(v)
			case "password", "pass":
				u.Password, err = str(v)
			case "permissions":
				u.Permissions, err = parsePermissions(v)
			default:
				err = fmt.Errorf("unsupported user key %q", k)
			}
			if err != nil {
				return nil, err
			}
		}
		users = append(users, u)
	}
	return users, nil
}

func parsePermissions(v any) (*Permissions, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("permissions: want a map")
	}
	p := &Permissions{}
	for k, v := range m {
		sp, err := parseSubjectPermission(v)
		if err != nil {
			return nil, fmt.Errorf("permissions %s: %w", k, err)
		}
		switch k {
		case "publish", "pub":
			p.Publish = sp
		case "subscribe", "sub":
			p.Subscribe = sp
		default:
			return nil, fmt.Errorf("unsupported permissions key %q", k)
		}
	}
	return p, nil
}

// parseSubjectPermission accepts a subject, a list (allow), or {allow, deny}.
func parseSubjectPermission(v any) (*SubjectPermission, error) {
	switch t := v.(type) {
	case string, []any:
		l, err := strList(t)
		return &SubjectPermission{Allow: l}, err
	case map[string]any:
		sp := &SubjectPermission{}
		for k, v := range t {
			l, err := strList(v)
			if err != nil {
				return nil, err
			}
			switch k {
			case "allow":
				sp.Allow = l
			case "deny":
				sp.Deny = l
			default:
				return nil, fmt.Errorf("unsupported key %q", k)
			}
		}
		return sp, nil
	}
	return nil, fmt.Errorf("want a subject, list or {allow, deny}")
}

func strList(v any) ([]string, error) {
	switch t := v.(type) {
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
	return nil, fmt.Errorf("want a string or list")
}

func parseListen(v any, host *string, port *int) error {
	s, err := str(v)
	if err != nil {
		if p, err := integer(v); err == nil {
			*port = p
			return nil
		}
		return err
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return err
	}
	if h != "" {
		*host = h
	}
	*port = n
	return nil
}

func str(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

func integer(v any) (int, error) {
	if n, ok := v.(int64); ok {
		return int(n), nil
	}
	return 0, fmt.Errorf("want a number, got %T", v)
}

func boolean(v any) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil
	}
	return false, fmt.Errorf("want true or false, got %T", v)
}

// duration accepts "2m"-style strings or a number of seconds.
func duration(v any) (time.Duration, error) {
	switch t := v.(type) {
	case string:
		return time.ParseDuration(t)
	case int64:
		return time.Duration(t) * time.Second, nil
	case float64:
		return time.Duration(t * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("want a duration, got %T", v)
}

package loop

// Concurrency: as config.go, once per load on the caller's goroutine.

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/nats-io/jwt/v2"
)

// accounts reads the accounts block: `accounts { NAME { users, exports,
// imports, jetstream } }`, as nats-server 2.15 spells it. What the
// accounts mean together (imports of unexported subjects, cycles) is
// checked when the server takes them (account.go: buildAccounts).
func (w *cfgWalker) accounts(o *Options) setter {
	return func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a block of accounts, got %s", kind(v))
		}
		names := make([]string, 0, len(m))
		for n := range m {
			names = append(names, n)
		}
		sort.Slice(names, func(i, j int) bool {
			li, ci := w.where(m[names[i]])
			lj, cj := w.where(m[names[j]])
			return li < lj || li == lj && ci < cj || li == lj && ci == cj && names[i] < names[j]
		})
		o.Accounts = o.Accounts[:0]
		for _, n := range names {
			e := m[n]
			path := "accounts." + n
			if err := validAccountName(n); err != nil {
				w.add(e, fmt.Sprintf("%q: invalid account name", path))
				continue
			}
			am, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("%q: want a block, got %s", path, kind(e)))
				continue
			}
			a := &Account{Name: n}
			w.walk(w.accountBlock(path, a), am)
			o.Accounts = append(o.Accounts, a)
		}
		return nil
	}
}

// accountBlock: one account.
func (w *cfgWalker) accountBlock(path string, a *Account) block {
	k := map[string]setter{}
	alias(k, w.listOf(path+".users", func(p string, m map[string]any) {
		u := &User{}
		w.walk(w.userBlock(p, u), m)
		a.Users = append(a.Users, u)
	}), "users")
	alias(k, w.listOf(path+".exports", func(p string, m map[string]any) {
		e := &Export{}
		w.walk(w.exportBlock(p, e), m)
		a.Exports = append(a.Exports, e)
	}), "exports")
	alias(k, w.listOf(path+".imports", func(p string, m map[string]any) {
		im := &Import{}
		w.walk(w.importBlock(p, im), m)
		a.Imports = append(a.Imports, im)
	}), "imports")
	alias(k, func(v any) error {
		switch t := v.(type) {
		case bool:
			a.JetStream = t
			return nil
		case string:
			switch t {
			case "enabled", "enable", "true":
				a.JetStream = true
				return nil
			case "disabled", "disable", "false":
				a.JetStream = false
				return nil
			}
		case map[string]any:
			a.JetStream = true
			lk := map[string]setter{}
			l := &a.JetStreamLimits
			alias(lk, setSize(&l.MaxMemory), "max_mem", "max_memory", "max_memory_store")
			alias(lk, setSize(&l.MaxStore), "max_file", "max_store", "max_file_store")
			alias(lk, setNonNeg(&l.MaxStreams), "max_streams")
			alias(lk, setNonNeg(&l.MaxConsumers), "max_consumers")
			w.walk(block{path: path + ".jetstream", keys: lk, native: []string{
				"max_ack_pending", "max_bytes_required", "mem_max_stream_bytes", "disk_max_stream_bytes",
				"memory_max_stream_bytes", "cluster_traffic", "tiered_limits",
			}}, t)
			return nil
		}
		return fmt.Errorf("want enabled, disabled or a block of limits, got %s", kind(v))
	}, "jetstream")
	alias(k, func(v any) error {
		m, ok := bare(v).(map[string]any)
		if !ok {
			return fmt.Errorf("want a block of limits, got %s", kind(v))
		}
		l := NoAccountLimits
		lk := map[string]setter{}
		alias(lk, setLimit(&l.MaxConnections), "max_connections", "max_conn")
		alias(lk, setLimit(&l.MaxSubscriptions), "max_subscriptions", "max_subs")
		alias(lk, setLimit(&l.MaxPayload), "max_payload", "max_pay")
		alias(lk, setLimit(&l.MaxLeafNodes), "max_leafnodes", "max_leafs")
		w.walk(block{path: path + ".limits", keys: lk}, m)
		a.Limits = &l
		return nil
	}, "limits")
	alias(k, w.mappings(&a.Mappings), "mappings", "maps")
	return block{path: path, keys: k, native: []string{
		"default_permissions", "nkey", "trace_dest",
		"trace_dest_sampling", "msg_trace", "cluster_traffic",
	}}
}

// mappings reads a mappings block: source subject -> a destination
// subject, or a list of {destination, weight} (weight a percentage: 50
// or "50%").
func (w *cfgWalker) mappings(p *[]*Mapping) setter {
	return func(v any) error {
		m, ok := bare(v).(map[string]any)
		if !ok {
			return fmt.Errorf("want a block of mappings, got %s", kind(v))
		}
		for _, src := range sortedKeys(m) {
			mp := &Mapping{Source: src}
			switch d := bare(m[src]).(type) {
			case string:
				mp.Dests = []MappingDest{{Subject: d}}
			case []any:
				for _, e := range d {
					dm, ok := bare(e).(map[string]any)
					if !ok {
						return fmt.Errorf("mapping %q: want {destination, weight}, got %s", src, kind(e))
					}
					var md MappingDest
					for k, v := range dm {
						switch strings.ToLower(k) {
						case "destination", "dest":
							s, err := str(v)
							if err != nil {
								return fmt.Errorf("mapping %q: %w", src, err)
							}
							md.Subject = s
						case "weight":
							n, err := weight(v)
							if err != nil {
								return fmt.Errorf("mapping %q: %w", src, err)
							}
							md.Weight = n
						case "cluster":
							return fmt.Errorf("mapping %q: cluster-scoped mappings are not supported (no clustering)", src)
						default:
							return fmt.Errorf("mapping %q: unknown field %q", src, k)
						}
					}
					mp.Dests = append(mp.Dests, md)
				}
			default:
				return fmt.Errorf("mapping %q: want a subject or a list of destinations, got %s", src, kind(m[src]))
			}
			if _, err := compileMapping(mp); err != nil {
				return err
			}
			*p = append(*p, mp)
		}
		return nil
	}
}

// weight reads a mapping weight: 1 to 100, or the same as "n%".
func weight(v any) (int, error) {
	if s, ok := bare(v).(string); ok {
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "%"))
		if err != nil {
			return 0, fmt.Errorf("weight %q: want a percentage", s)
		}
		v = int64(n)
	}
	n, err := integer(v)
	if err == nil && (n < 1 || n > 100) {
		err = fmt.Errorf("weight %d: want 1 to 100", n)
	}
	return n, err
}

// setLimit reads an account limit: a count, or -1 for unlimited.
func setLimit(p *int) setter {
	return func(v any) error {
		n, err := integer(v)
		if err != nil {
			return err
		}
		if n < -1 {
			return fmt.Errorf("want a count or -1 (unlimited), got %d", n)
		}
		*p = n
		return nil
	}
}

// listOf reads a list of blocks, each walked by each.
func (w *cfgWalker) listOf(path string, each func(path string, m map[string]any)) setter {
	return func(v any) error {
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("want a list, got %s", kind(v))
		}
		for i, e := range list {
			p := fmt.Sprintf("%s[%d]", path, i)
			m, ok := bare(e).(map[string]any)
			if !ok {
				w.add(e, fmt.Sprintf("%q: want a block, got %s", p, kind(e)))
				continue
			}
			each(p, m)
		}
		return nil
	}
}

// exportBlock: {stream: subject} or {service: subject, response_type,
// response_threshold}, with an optional accounts list.
func (w *cfgWalker) exportBlock(path string, e *Export) block {
	k := map[string]setter{}
	alias(k, setStr(&e.Stream), "stream")
	alias(k, setStr(&e.Service), "service")
	alias(k, setStr(&e.ResponseType), "response_type", "response")
	alias(k, setDur(&e.ResponseThreshold), "response_threshold", "threshold")
	alias(k, setList(&e.Accounts), "accounts")
	return block{path: path, keys: k, native: []string{
		"latency", "allow_trace", "account_token_position",
	}}
}

// importBlock: {stream: {account, subject}, prefix | to} or {service:
// {account, subject}, to}.
func (w *cfgWalker) importBlock(path string, im *Import) block {
	k := map[string]setter{}
	src := func(p **ImportSource, what string) setter {
		return func(v any) error {
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("want {account, subject}, got %s", kind(v))
			}
			s := &ImportSource{}
			sk := map[string]setter{}
			alias(sk, setStr(&s.Account), "account")
			alias(sk, setStr(&s.Subject), "subject")
			w.walk(block{path: path + "." + what, keys: sk}, m)
			*p = s
			return nil
		}
	}
	alias(k, src(&im.Stream, "stream"), "stream")
	alias(k, src(&im.Service, "service"), "service")
	alias(k, setStr(&im.Prefix), "prefix")
	alias(k, setStr(&im.To), "to")
	return block{path: path, keys: k, native: []string{"share", "allow_trace"}}
}

// operators reads `operator`: a JWT, a file holding one (as nsc writes
// them, decorated or not), or a list of those.
func (w *cfgWalker) operators(o *Options) setter {
	return func(v any) error {
		list, err := strList(v)
		if err != nil {
			return err
		}
		o.Operators = o.Operators[:0]
		for _, e := range list {
			tok, err := readJWT(e)
			if err != nil {
				return err
			}
			o.Operators = append(o.Operators, tok)
		}
		return nil
	}
}

// readJWT returns s when it is a JWT, else the JWT in file s.
func readJWT(s string) (string, error) {
	if strings.HasPrefix(s, "eyJ") {
		return s, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return "", err
	}
	if len(b) > 1<<20 {
		return "", fmt.Errorf("%s: too large for a JWT", s)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s, err)
	}
	return tok, nil
}

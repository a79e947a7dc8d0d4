package loop

// Concurrency: the monitor's handlers run on net/http goroutines. What
// they read is either immutable (opts, infoBase), atomic (counters, stat
// shards, live options), behind the sublist's lock (Count), or gathered in
// the context that owns it: connections through eachClient (connsnap.go),
// event-loop counters by a task on each loop (Loops), JetStream by a
// request the Manager goroutine answers (jetstream/usage.go), MQTT by the
// plug-in under its own locks.

import (
	"cmp"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop/monitor"
)

// startMonitor serves the monitoring endpoints nats-server users expect,
// over HTTP and, with https_port, over TLS with the tls block's
// certificate (reloaded with it).
func (s *Server) startMonitor() error {
	host := s.opts.HTTPHost
	if host == "" {
		host = s.opts.Host
	}
	listen := func(port int) (net.Listener, error) {
		return net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(max(port, 0))))
	}
	var ln, tln net.Listener
	var err error
	if s.opts.HTTPPort != 0 {
		if ln, err = listen(s.opts.HTTPPort); err != nil {
			return err
		}
	}
	if s.opts.HTTPSPort != 0 {
		if tln, err = listen(s.opts.HTTPSPort); err != nil {
			if ln != nil {
				ln.Close()
			}
			return err
		}
		ts := s.tls
		tln = tls.NewListener(tln, &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return ts.cfg.Load(), nil
		}})
	}
	s.http = &http.Server{Handler: underBasePath(basePath(s.opts.HTTPBasePath), s.Monitor()),
		ReadHeaderTimeout: 5 * time.Second}
	if ln != nil {
		s.httpAddr = ln.Addr()
		go func() { _ = s.http.Serve(ln) }()
	}
	if tln != nil {
		s.httpsAddr = tln.Addr()
		go func() { _ = s.http.Serve(tln) }()
	}
	return nil
}

// Monitor returns the server's monitoring endpoints, made on first use;
// they answer without a monitoring port too (Monitor.Request).
func (s *Server) Monitor() *monitor.Monitor {
	s.monOnce.Do(func() { s.mon = monitor.New(s) })
	return s.mon
}

// basePath is http_base_path as nats-server cleans it: "/" when empty,
// with a leading slash and no trailing one.
func basePath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	return path.Clean(p)
}

// underBasePath serves h under base: base/varz reaches h's /varz, and
// base itself is redirected to base/ (the live page's links are relative).
func underBasePath(base string, h http.Handler) http.Handler {
	if base == "/" {
		return h
	}
	strip := http.StripPrefix(base, h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == base:
			http.Redirect(w, r, base+"/", http.StatusMovedPermanently)
		case strings.HasPrefix(r.URL.Path, base+"/"):
			strip.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}

// MonitorTLSAddr returns the HTTPS monitoring address, or nil.
func (s *Server) MonitorTLSAddr() net.Addr { return s.httpsAddr }

// Varz returns a snapshot of server state and counters, without the CPU
// figure and request counts the monitor adds.
func (s *Server) Varz() *monitor.Varz {
	now := time.Now()
	lv := s.live.Load()
	v := &monitor.Varz{
		ID: s.id, Name: s.opts.ServerName, Version: Version, Proto: 1, GoVersion: runtime.Version(),
		Host: s.opts.Host, Port: s.infoBase.Port, AuthRequired: lv.auth.required,
		MaxConn: lv.maxConnections, MaxSubs: lv.maxSubscriptions,
		PingInterval: lv.pingInterval, MaxPingsOut: lv.maxPingsOut,
		HTTPHost: cmp.Or(s.opts.HTTPHost, s.opts.Host), HTTPBasePath: basePath(s.opts.HTTPBasePath),
		AuthTimeout: lv.authTimeout.Seconds(), MaxControlLine: int32(lv.maxControlLine),
		MaxPayload: lv.maxPayload, MaxPending: int64(s.opts.MaxPending), WriteDeadline: s.opts.WriteDeadline,
		Start: s.start, Now: now.UTC(), Uptime: fmtUptime(now.Sub(s.start)),
		Mem: monitor.RSS(), Cores: runtime.NumCPU(), MaxProcs: runtime.GOMAXPROCS(0),
		Connections: s.NumClients(), TotalConnections: s.totalConns.Load(),
		SlowConsumers: int64(s.slowCons.Load()), StaleConnections: int64(s.staleConns.Load()),
		Subscriptions: uint32(s.NumSubscriptions()), ConfigLoadTime: s.ConfigLoadTime().UTC(),
		SlowStats:  &monitor.KindCounts{Clients: s.slowCons.Load()},
		StaleStats: &monitor.KindCounts{Clients: s.staleConns.Load()},
		IO:         s.opts.IO, Loops: s.opts.Loops,
	}
	if lv.auth.sysAcc != nil {
		v.SystemAccount = lv.auth.sysAcc.name
	}
	if v.Mem == 0 { // no /proc: what the Go runtime holds, without stopping the world
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		v.Mem = int64(ms.Sys)
	}
	if a, ok := s.httpAddr.(*net.TCPAddr); ok {
		v.HTTPPort = a.Port
	}
	if a, ok := s.httpsAddr.(*net.TCPAddr); ok {
		v.HTTPSPort = a.Port
	}
	if s.tls != nil {
		v.TLSRequired, v.TLSVerify = true, s.infoBase.TLSVerify
		v.TLSTimeout = s.tls.timeout.Seconds()
	}
	if a, ok := s.MQTTAddr().(*net.TCPAddr); ok {
		v.MQTT = monitor.MQTTVarz{Host: s.opts.Host, Port: a.Port}
	}
	if a, ok := s.WebsocketAddr().(*net.TCPAddr); ok {
		v.Websocket = monitor.WebsocketVarz{Host: s.opts.Host, Port: a.Port, NoTLS: s.wsTLS == nil,
			TLSRequired: s.wsTLS != nil, Compression: s.opts.Websocket.Compression}
	}
	for i := range s.stats {
		st := &s.stats[i]
		v.InMsgs += st.inMsgs.Load()
		v.InBytes += st.inBytes.Load()
		v.OutMsgs += st.outMsgs.Load()
		v.OutBytes += st.outBytes.Load()
	}
	v.InClientMsgs, v.InClientBytes, v.OutClientMsgs, v.OutClientBytes = v.InMsgs, v.InBytes, v.OutMsgs, v.OutBytes
	v.Leafs = len(s.LeafLinks())
	if s.js != nil {
		cfg := s.jsConfig()
		v.JetStream.Config = &cfg
		if u := s.JetStream(false, false); u != nil {
			v.JetStream.Stats = &u.Stats
		}
	}
	return v
}

// Leafs lists the leaf-node links that are up for /leafz and /metrics
// (monitor.Source).
func (s *Server) Leafs(subs bool, acc string) []*monitor.LeafInfo {
	var out []*monitor.LeafInfo
	for _, l := range s.leafLinks(subs) {
		if acc != "" && l.Account != acc {
			continue
		}
		out = append(out, &monitor.LeafInfo{ID: l.ID, Name: l.Name, IsSpoke: l.IsSpoke, Account: l.Account,
			IP: l.IP, Port: l.Port, InMsgs: l.InMsgs, OutMsgs: l.OutMsgs, InBytes: l.InBytes, OutBytes: l.OutBytes,
			NumSubs: l.NumSubs, Subs: l.Subs, Compression: l.Compression})
	}
	return out
}

// fmtUptime is nats-server's uptime: "1d2h3m4s", "5m6s", "7s".
func fmtUptime(d time.Duration) string {
	d = max(d, 0).Truncate(time.Second)
	days := int64(d / (24 * time.Hour))
	h, m, sec := int64(d/time.Hour)%24, int64(d/time.Minute)%60, int64(d/time.Second)%60
	it := strconv.FormatInt
	switch {
	case days > 0:
		return it(days, 10) + "d" + it(h, 10) + "h" + it(m, 10) + "m" + it(sec, 10) + "s"
	case h > 0:
		return it(h, 10) + "h" + it(m, 10) + "m" + it(sec, 10) + "s"
	case m > 0:
		return it(m, 10) + "m" + it(sec, 10) + "s"
	}
	return it(sec, 10) + "s"
}

func (s *Server) jsConfig() monitor.JetStreamConfig {
	return monitor.JetStreamConfig{MaxMemory: s.opts.JetStreamMaxMemory, MaxStore: s.opts.JetStreamMaxStore,
		StoreDir: s.opts.StoreDir}
}

// usageTimeout bounds how long a monitoring request waits for the
// JetStream Manager, which may be busy with a large batch.
const usageTimeout = 5 * time.Second

// JetStream reports JetStream's usage for the monitor; nil when it is off
// or its Manager did not answer in time.
func (s *Server) JetStream(consumers, detail bool) *monitor.JSUsage {
	if s.js == nil {
		return nil
	}
	ju := &monitor.JSUsage{Config: s.jsConfig()}
	for _, m := range append([]*jetstream.Manager{s.js}, s.jsAcc...) {
		u, err := m.Usage(consumers, usageTimeout)
		if err != nil {
			return nil
		}
		st := monitor.JetStreamStats{
			Memory: u.Memory, Store: u.Store, ReservedMemory: u.ReservedMemory, ReservedStore: u.ReservedStore,
			Accounts: 1, API: monitor.APIStats{Level: u.APILevel, Total: u.APITotal, Errors: u.APIErrors}}
		ju.Accounts = append(ju.Accounts, monitor.AccountJSUsage{Name: m.Account(), Stats: st})
		t := &ju.Stats
		t.Memory, t.Store = t.Memory+st.Memory, t.Store+st.Store
		t.ReservedMemory, t.ReservedStore = t.ReservedMemory+st.ReservedMemory, t.ReservedStore+st.ReservedStore
		t.Accounts++
		t.API.Level, t.API.Total, t.API.Errors = st.API.Level, t.API.Total+st.API.Total, t.API.Errors+st.API.Errors
		for _, st := range u.Streams {
			ju.Streams = append(ju.Streams, streamUsage(m.Account(), st, detail))
		}
	}
	return ju
}

// streamUsage is one stream of account acc as the monitor shows it.
func streamUsage(acc string, st jetstream.StreamUsage, detail bool) monitor.StreamUsage {
	su := monitor.StreamUsage{Account: acc, Name: st.Info.Config.Name, Storage: string(st.Info.Config.Storage),
		Created: st.Info.Created, Msgs: st.Info.State.Msgs, Bytes: st.Info.State.Bytes,
		NumConsumers: st.Info.State.Consumers}
	if su.Storage == "" {
		su.Storage = "file"
	}
	for _, c := range st.Consumers {
		su.Consumers = append(su.Consumers, monitor.ConsumerUsage{Name: c.Name, Pending: c.NumPending,
			AckPending: c.NumAckPending, Redelivered: c.NumRedelivered, Waiting: c.NumWaiting})
	}
	if detail {
		d := monitor.StreamDetail{Name: su.Name, Created: st.Info.Created.UTC()}
		d.Config, _ = json.Marshal(st.Info.Config)
		d.State, _ = json.Marshal(st.Info.State)
		if st.Info.Cluster != nil {
			d.Cluster, _ = json.Marshal(st.Info.Cluster)
		}
		for _, c := range st.Consumers {
			b, _ := json.Marshal(c)
			d.Consumer = append(d.Consumer, b)
		}
		su.Detail = d
	}
	return su
}

// Subs lists every client subscription, each read in its owner's context.
func (s *Server) Subs() ([]monitor.SubDetail, monitor.SublistStats) {
	var list []monitor.SubDetail
	var mu sync.Mutex
	s.tr.eachClient(func(c *client) {
		c.t.outLock()
		var mine []monitor.SubDetail
		acc := monitor.GlobalAccount
		if c.acc != nil {
			acc = c.acc.name
		}
		for _, sub := range c.subs {
			mine = append(mine, sub.detail(c.id, acc))
		}
		c.t.outUnlock()
		mu.Lock()
		list = append(list, mine...)
		mu.Unlock()
	})
	return list, monitor.SublistStats{NumSubs: uint32(s.NumSubscriptions())}
}

// MQTTStats is what an MQTT plug-in reports for monitoring.
type MQTTStats struct {
	Sessions, Connected, Retained int
	RetainedBytes                 int64
}

// mqttStatser is implemented by the MQTT plug-in.
type mqttStatser interface{ Stats() MQTTStats }

// MQTT reports MQTT's sessions and retained messages.
func (s *Server) MQTT() (monitor.MQTTStat, bool) {
	p, ok := s.mqtt.(mqttStatser)
	if !ok {
		return monitor.MQTTStat{}, false
	}
	st := p.Stats()
	return monitor.MQTTStat{Sessions: st.Sessions, Connected: st.Connected, Retained: st.Retained,
		RetainedBytes: st.RetainedBytes}, true
}

// Loops reports each event loop's counters (none on the goroutine transport).
func (s *Server) Loops() []monitor.LoopStat { return s.tr.loopStats() }

// AccountNames lists every account, sorted.
func (s *Server) AccountNames() []string { return sortedKeys(s.live.Load().auth.accounts) }

// AccountStats reports every account's open connections, their
// subscriptions and traffic (of the connections open now), for /accstatz.
func (s *Server) AccountStats() []*monitor.AccountStat {
	by := map[string]*monitor.AccountStat{}
	var out []*monitor.AccountStat
	for _, name := range s.AccountNames() {
		st := &monitor.AccountStat{Account: name, Name: name}
		by[name] = st
		out = append(out, st)
	}
	for _, c := range s.Conns(false) {
		st := by[c.Account]
		if st == nil {
			continue
		}
		st.Conns++
		st.TotalConns++
		st.NumSubs += c.NumSubs
		st.Sent.Msgs += c.OutMsgs
		st.Sent.Bytes += c.OutBytes
		st.Received.Msgs += c.InMsgs
		st.Received.Bytes += c.InBytes
	}
	return out
}

// AccountInfo describes the account name for /accountz?acc=NAME: its
// connections (each read in its owner's context) and subscriptions.
func (s *Server) AccountInfo(name string) (*monitor.AccountInfo, bool) {
	auth := s.live.Load().auth
	sp := auth.accounts[name]
	if sp == nil {
		return nil, false
	}
	st := monitor.SublistStats{NumSubs: uint32(sp.acc.sl.Count() - sysImportSubs(sp.acc))}
	ai := &monitor.AccountInfo{AccountName: name, Complete: true, LastUpdate: s.start.UTC(),
		IsSystem: sp.acc == auth.sysAcc, SubCnt: st.NumSubs, Sublist: &st,
		JetStream: s.js != nil && (sp.acc == auth.gacc || sp.cfg != nil && sp.cfg.JetStream)}
	for _, c := range s.Conns(false) {
		if c.Account == name {
			ai.ClientCnt++
		}
	}
	return ai, true
}

package loop

// Concurrency: New, Start, Shutdown and LameDuck run on the caller's
// goroutine; housekeeping is one goroutine that ticks every client through
// eachClient and runs the MQTT plug-in's Housekeep. Counters and stat
// shards are atomics; mu guards shutdown only and is a leaf.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop/monitor"
	"github.com/nats-io/nuid"
)

// Version is the protocol-compatible server version reported in INFO.
const Version = "2.10.0"

// Server is one evnats broker. Its exported methods are safe for concurrent use.
type Server struct {
	opts     Options
	id       string
	sl       *subList // the global account's ($G: gacc.sl)
	gacc     *account
	authCfg  *authConfig // as started; a reload's is live.auth
	slowAuth *slowAuth   // bounds bcrypt checks, run off the loops
	start    time.Time
	infoBase serverInfo // immutable after New; copied per connection

	nextCID    atomic.Uint64
	numConns   atomic.Int64
	totalConns atomic.Uint64
	stats      []statShard // sharded by loop to avoid a contended cache line
	slowCons   atomic.Uint64
	staleConns atomic.Uint64
	lameDuck   atomic.Bool

	js        *jetstream.Manager   // nil unless JetStream is enabled
	mqtt      Plugin               // serves the MQTT listener; nil when it is off
	jsAcc     []*jetstream.Manager // one per other account with jetstream enabled
	leaf      interface{ Close() } // the leaf-node remotes (loop/leaf); nil when none
	leafWS    atomic.Value         // leafWSAcceptor once leaf nodes are open with a port; read by websocket upgrades
	tls       *tlsServer           // nil unless clients connect with TLS
	mqttTLS   *tlsServer           // nil unless MQTT clients connect with TLS
	ws        *wsServer            // the WebSocket listener's setup; nil when it is off
	wsTLS     *tlsServer           // wss://: nil unless the websocket block has tls
	tr        serverTransport
	http      *http.Server // monitoring, on httpAddr and httpsAddr
	httpAddr  net.Addr
	httpsAddr net.Addr
	monOnce   sync.Once
	mon       *monitor.Monitor // made once by Monitor

	closed closedRing // recently closed connections (connsnap.go)

	mu struct {
		sync.Mutex
		shutdown bool
	}
	done chan struct{}
	log  *Logger
	live atomic.Pointer[liveOpts] // what a reload may change (reload.go)
	// started are the options New was given, before defaults, which a
	// reload compares with; reloadMu serialises reloads and guards
	// inForce, the options as last loaded (opts stays as started);
	// cfgTime is when they were.
	started  Options
	reloadMu sync.Mutex
	inForce  Options
	cfgTime  atomic.Int64
	// importUndo removes the internal subscriptions that carry the
	// imports in force (account.go: installImports); under reloadMu.
	importUndo []func()
	sysReqs    chan sysReq  // server requests in the system account (sysacc.go)
	sysSubs    atomic.Int32 // how many subscriptions sysacc.go made, not counted as subscriptions
	// liveSrc are the options (defaults filled in) the live settings
	// were made from, which a claims update takes again; under reloadMu.
	liveSrc Options
}

// serverTransport is what Server needs from a transport (gnet or goroutine).
type serverTransport interface {
	start() error
	addr() net.Addr
	mqttListenAddr() net.Addr // nil when MQTT is off
	wsListenAddr() net.Addr   // nil when WebSocket is off
	// eachClient runs fn on every client in the context that owns it.
	eachClient(fn func(c *client))
	// loopStats reads each event loop's counters on that loop.
	loopStats() []monitor.LoopStat
	stop()
}

// statShard holds message counters for one loop (or a hash of goroutine clients).
type statShard struct {
	inMsgs, inBytes, outMsgs, outBytes atomic.Int64
	_                                  [32]byte // keep shards on separate cache lines
}

// serverInfo is the INFO JSON; field names as nats-server sends them.
type serverInfo struct {
	ServerID     string `json:"server_id"`
	ServerName   string `json:"server_name"`
	Version      string `json:"version"`
	Proto        int    `json:"proto"`
	Go           string `json:"go"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	Headers      bool   `json:"headers"`
	AuthRequired bool   `json:"auth_required,omitempty"`
	MaxPayload   int    `json:"max_payload"`
	ClientID     uint64 `json:"client_id,omitempty"`
	ClientIP     string `json:"client_ip,omitempty"`
	TLSRequired  bool   `json:"tls_required,omitempty"`
	TLSVerify    bool   `json:"tls_verify,omitempty"`
	LameDuckMode bool   `json:"ldm,omitempty"`
	JetStream    bool   `json:"jetstream,omitempty"`
	Nonce        string `json:"nonce,omitempty"`
	// The INFO answering a client's first PING after CONNECT (protocol
	// 1): the account it is bound to, with its max_payload.
	ConnectInfo     bool   `json:"connect_info,omitempty"`
	RemoteAccount   string `json:"remote_account,omitempty"`
	IsSystemAccount bool   `json:"acc_is_sys,omitempty"`
}

// New validates opts and returns a server that is not yet listening.
func New(opts Options) (*Server, error) {
	given := opts
	opts.setDefaults()
	if opts.IO != IOGnet && opts.IO != IOGoroutine {
		return nil, fmt.Errorf("loop: unknown io transport %q (want %q or %q)", opts.IO, IOGnet, IOGoroutine)
	}
	if err := opts.validateFlow(); err != nil {
		return nil, err
	}
	if opts.MQTTMaxSessionQueueMsgs < 0 || opts.MQTTMaxSessionQueueBytes < 0 {
		return nil, fmt.Errorf("loop: mqtt max_session_queue_msgs and max_session_queue_bytes may not be negative")
	}
	if opts.MQTTMaxRetainedMsgs < 0 || opts.MQTTMaxRetainedBytes < 0 {
		return nil, fmt.Errorf("loop: mqtt max_retained_msgs and max_retained_bytes may not be negative")
	}
	gacc := newAccount(globalAccount, nil)
	ac, err := newAuthConfig(&opts, nil, gacc)
	if err != nil {
		return nil, err
	}
	if opts.HTTPSPort != 0 && opts.TLS == nil {
		return nil, fmt.Errorf("loop: https_port needs the tls block (its certificate serves the monitoring endpoints)")
	}
	var ts *tlsServer
	if opts.TLS != nil {
		if ts, err = newTLSServer(opts.TLS); err != nil {
			return nil, err
		}
	}
	var mts *tlsServer
	if opts.MQTTTLS != nil && opts.MQTTPort != 0 {
		if mts, err = newTLSServer(opts.MQTTTLS); err != nil {
			return nil, fmt.Errorf("%w (mqtt)", err)
		}
		if ts != nil {
			mts.slots = ts.slots // one bound on handshakes for the server
		}
	}
	var ws *wsServer
	var wts *tlsServer
	if opts.Websocket.Port != 0 {
		if ws, err = newWSServer(&opts); err != nil {
			return nil, err
		}
		if o := opts.Websocket.TLS; o != nil {
			if wts, err = newTLSServer(o); err != nil {
				return nil, fmt.Errorf("%w (websocket)", err)
			}
			if ts != nil {
				wts.slots = ts.slots
			} else if mts != nil {
				wts.slots = mts.slots
			}
		}
	}
	s := &Server{
		opts:    opts,
		id:      nuid.Next(),
		sl:      gacc.sl,
		gacc:    gacc,
		authCfg: ac,
		start:   time.Now(),
		stats:   make([]statShard, opts.Loops),
		done:    make(chan struct{}),
		tls:     ts,
		ws:      ws,
		mqttTLS: mts,
		wsTLS:   wts,
	}
	s.slowAuth = newSlowAuth()
	s.closed.size = opts.MaxClosedClients
	if s.log, err = newLogger(&opts); err != nil {
		return nil, err
	}
	if ac.op != nil {
		for _, pub := range sortedKeys(ac.op.invalid) {
			s.Warnf("Account [%s] has validation issues, not loaded: %v", pub, ac.op.invalid[pub])
		}
	}
	s.live.Store(liveOf(&opts, ac))
	setMappings(ac.accounts)
	s.importUndo = s.installImports(ac.accounts)
	s.cfgTime.Store(time.Now().UnixNano())
	if s.opts.ServerName == "" {
		s.opts.ServerName = s.id
	}
	s.started, s.inForce = given, given
	s.liveSrc = opts
	s.infoBase = serverInfo{
		ServerID: s.id, ServerName: s.opts.ServerName, Version: Version, Proto: 1,
		Go: runtime.Version(), Host: opts.Host, Port: opts.Port, Headers: true,
		AuthRequired: opts.authRequired(), MaxPayload: opts.MaxPayload, JetStream: opts.JetStream,
		TLSRequired: ts != nil, TLSVerify: ts != nil && opts.TLS.Verify,
	}
	if opts.IO == IOGnet {
		s.tr = newGnetTransport(s)
	} else {
		s.tr = newGoTransport(s)
	}
	return s, nil
}

// Start begins listening and serving; it returns once the listeners are up.
func (s *Server) Start() error {
	// JetStream recovers its streams and subscribes its API before the
	// listener opens, so no client can find it half-started.
	if err := s.startJetStream(); err != nil {
		return err
	}
	s.startSysHandlers()
	if s.opts.MQTTPort != 0 {
		mq, err := s.openMQTT()
		if err != nil {
			s.stopJetStream()
			return fmt.Errorf("loop: mqtt: %w", err)
		}
		s.mqtt = mq
	}
	if err := s.tr.start(); err != nil {
		s.stopJetStream()
		if s.mqtt != nil {
			s.mqtt.Close()
		}
		return err
	}
	if s.opts.HTTPPort != 0 || s.opts.HTTPSPort != 0 {
		if err := s.startMonitor(); err != nil {
			s.stopJetStream()
			s.tr.stop()
			return err
		}
	}
	lf, err := s.openLeaf()
	if err != nil {
		s.Shutdown()
		return fmt.Errorf("loop: leafnodes: %w", err)
	}
	s.leaf = lf
	go s.housekeeping()
	if s.sysReqs != nil {
		go s.answerSys()
	}
	s.logStartup()
	return nil
}

// MQTTAddr returns the MQTT listener address, or nil when MQTT is off.
func (s *Server) MQTTAddr() net.Addr { return s.tr.mqttListenAddr() }

// WebsocketAddr returns the WebSocket listener address, or nil when it is off.
func (s *Server) WebsocketAddr() net.Addr { return s.tr.wsListenAddr() }

// Addr returns the client listener address.
func (s *Server) Addr() net.Addr { return s.tr.addr() }

// ClientURL returns nats://host:port for the client listener.
func (s *Server) ClientURL() string {
	a := s.tr.addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "nats://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

// MonitorAddr returns the monitoring listener address, or nil.
func (s *Server) MonitorAddr() net.Addr { return s.httpAddr }

// NumClients returns the number of open client connections.
func (s *Server) NumClients() int { return int(s.numConns.Load()) }

// NumSubscriptions returns the number of subscriptions in every account,
// but for the server's own system-account handlers.
func (s *Server) NumSubscriptions() int {
	n := -int(s.sysSubs.Load())
	for _, sp := range s.live.Load().auth.accounts {
		n += sp.acc.sl.Count() - sysImportSubs(sp.acc)
	}
	return n
}

// SlowConsumers returns how many connections were closed as slow consumers.
func (s *Server) SlowConsumers() uint64 { return s.slowCons.Load() }

// Shutdown closes every connection and stops the server. It is idempotent.
func (s *Server) Shutdown() {
	s.mu.Lock()
	if s.mu.shutdown {
		s.mu.Unlock()
		return
	}
	s.mu.shutdown = true
	s.mu.Unlock()
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = s.http.Shutdown(ctx)
		cancel()
	}
	if s.leaf != nil {
		s.leaf.Close() // no more messages from hubs
	}
	s.stopJetStream() // finish queued publishes and flush stores while loops still run
	s.tr.stop()
	if s.mqtt != nil {
		s.mqtt.Close() // after every connection released its session
	}
	s.Noticef("server shut down") // before done: main exits when done closes
	close(s.done)
}

// shuttingDown reports whether Shutdown has begun.
func (s *Server) shuttingDown() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.shutdown
}

// Done is closed when the server has shut down.
func (s *Server) Done() <-chan struct{} { return s.done }

// LameDuck stops accepting new clients, tells connected clients through
// INFO (ldm) so they reconnect elsewhere, closes them spread over the
// lame-duck duration after a grace period, then shuts down.
func (s *Server) LameDuck() {
	if !s.lameDuck.CompareAndSwap(false, true) {
		return
	}
	s.Noticef("entering lame duck mode, stop accepting new clients")
	info := s.infoBase
	info.LameDuckMode = true
	line := infoLine(&info)
	s.tr.eachClient(func(c *client) { c.sendProto(line) })
	select {
	case <-time.After(s.opts.LameDuckGrace):
	case <-s.done:
		return
	}
	s.tr.eachClient(func(c *client) { c.closeWithErr("") })
	s.Shutdown()
}

// housekeeping drives time for every client once a second: pings, stale
// connections and auth timeouts.
func (s *Server) housekeeping() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.tr.eachClient(func(c *client) { c.tick(now) })
			s.expireResponses(now)
			if s.mqtt != nil {
				s.mqtt.Housekeep()
			}
		}
	}
}

func infoLine(info *serverInfo) []byte {
	b, _ := json.Marshal(info)
	return append(append([]byte("INFO "), b...), "\r\n"...)
}

func (s *Server) shard(i int) *statShard { return &s.stats[i%len(s.stats)] }

// Noticef logs at notice level.
func (s *Server) Noticef(format string, args ...any) { s.log.Noticef(format, args...) }

// Warnf logs a warning.
func (s *Server) Warnf(format string, args ...any) { s.log.Warnf(format, args...) }

// Debugf logs when debug (-D) is on.
func (s *Server) Debugf(format string, args ...any) { s.log.Debugf(format, args...) }

// Errorf logs an error.
func (s *Server) Errorf(format string, args ...any) { s.log.Errorf(format, args...) }

// ReopenLogFile closes and reopens the log file (SIGUSR1), for a log
// rotated by an outside tool such as logrotate.
func (s *Server) ReopenLogFile() {
	isFile, err := s.log.Reopen()
	switch {
	case !isFile:
		s.Noticef("File log re-open ignored, not a file logger")
	case err != nil:
		s.Errorf("File log re-open: %v; still writing to the old file", err)
	default:
		s.Noticef("File log re-opened")
	}
}

// Package loop is the evnats server: connections, their protocol sessions and
// the two transports that drive them. The gnet transport runs every
// connection on one of N reactor loops; the goroutine transport runs one
// reader and one writer goroutine per connection on the standard library.
package loop

// Concurrency: Options are copied into the Server by New and never change
// after; any goroutine reads them. What a reload changes is published
// apart, as one atomic liveOpts (reload.go), and in the Logger.

import (
	"fmt"
	"io"

	"github.com/evnats/evnats/jetstream/store"
	"runtime"
	"time"
)

// Transport names for Options.IO.
const (
	IOGnet      = "gnet"
	IOGoroutine = "goroutine"
)

// Defaults, matching nats-server where it has the same setting.
const (
	DefaultPort           = 4222
	DefaultHost           = "0.0.0.0"
	DefaultMaxPayload     = 1 << 20
	MaxPayloadLimit       = 64 << 20
	DefaultMaxControlLine = 4096
	DefaultMaxPending     = 64 << 20
	DefaultMaxConnections = 64 * 1024
	// DefaultMaxClosedClients is nats-server's size of the closed-connection ring.
	DefaultMaxClosedClients = 10000
	DefaultPingInterval     = 2 * time.Minute
	DefaultMaxPingsOut      = 2
	DefaultAuthTimeout      = 2 * time.Second
	DefaultWriteDeadline    = 10 * time.Second
	DefaultLameDuck         = 2 * time.Minute
	DefaultLameDuckGrace    = 10 * time.Second
	DefaultStoreDir         = "./data"

	// Flow control (not in nats-server; see docs/ARCHITECTURE.md "Flow
	// control"). The high-water mark defaults to max_pending/4, at most
	// DefaultFlowHighWater; the low-water mark to half the high one.
	DefaultFlowHighWater   = 8 << 20
	DefaultFlowStallWindow = 100 * time.Millisecond
)

// Options configures a Server. The zero value of a field means its default.
type Options struct {
	ServerName string
	Host       string
	Port       int // 0 picks the default; -1 picks a random free port
	HTTPPort   int // monitoring port; 0 disables, -1 random
	// HTTPSPort serves the monitoring endpoints over TLS with the tls
	// block's certificate (nats-server's https_port); 0 disables, -1 random.
	HTTPSPort int
	HTTPHost  string // the monitoring ports' address; "": Host
	// HTTPBasePath prefixes every monitoring path ("/nats": /nats/varz).
	HTTPBasePath string
	Loops        int // gnet reactor loops; 0 means GOMAXPROCS
	IO           string

	MaxPayload       int
	MaxControlLine   int
	MaxPending       int
	MaxConnections   int
	MaxSubscriptions int // per connection; 0 is unlimited
	// MaxClosedClients is how many closed connections /connz?state=closed
	// remembers; 0: DefaultMaxClosedClients, negative: none.
	MaxClosedClients int
	PingInterval     time.Duration
	MaxPingsOut      int
	WriteDeadline    time.Duration
	// Flow control: a subscriber whose pending output passes FlowHighWater
	// bytes holds the publishers feeding it until it drains below
	// FlowLowWater; one whose socket takes nothing for FlowStallWindow
	// while over the mark no longer holds them. 0: the defaults above;
	// New checks 0 < low < high <= MaxPending and a positive window.
	FlowHighWater    int
	FlowLowWater     int
	FlowStallWindow  time.Duration
	LameDuckDuration time.Duration
	LameDuckGrace    time.Duration

	// Auth: at most one of Token, Username/Password or Users.
	Token       string
	Username    string
	Password    string
	Users       []*User
	AuthTimeout time.Duration

	// Accounts (account.go): each its own subject space, with its users
	// and the streams and services it exports and imports. Users outside
	// any account (Users above) are in the global account $G. NoAuthUser
	// is the user a client that sends no credentials logs in as;
	// SystemAccount names the system account ("$SYS" when empty).
	Accounts      []*Account
	NoAuthUser    string
	SystemAccount string
	// Operator mode (jwt.go): the operator JWTs whose keys sign account
	// JWTs, the resolver (only "MEMORY") and the account JWTs it holds,
	// by account public key. Users then log in with user JWTs.
	Operators   []string
	Resolver    string // "MEMORY", or "full"/"cache": JWTs in ResolverDir, updated over $SYS
	ResolverDir string
	// Mappings rewrite subjects published in the global account $G
	// (the top-level mappings block).
	Mappings []*Mapping
	// ResolverAllowDelete lets the operator delete account JWTs from
	// ResolverDir ($SYS.REQ.CLAIMS.DELETE); they are renamed to
	// <key>.jwt.deleted unless ResolverHardDelete.
	ResolverAllowDelete, ResolverHardDelete bool
	ResolverPreload                         map[string]string

	// JetStream: enabled, where file streams live, sync policy, and the
	// limits reported to clients (0: unlimited).
	JetStream          bool
	StoreDir           string
	JetStreamSync      store.SyncPolicy
	JetStreamMaxMemory int64
	JetStreamMaxStore  int64
	JetStreamFS        store.FS // file system for stores; nil is the OS (tests inject faults)
	// JetStreamDomain (jetstream { domain }) makes every JetStream of this
	// server addressable as $JS.<domain>.API.> too, as nats-server maps
	// it: what leaf-node peers use to reach it ("" : none).
	JetStreamDomain string

	// MQTT: the listener for MQTT 3.1.1 clients (port 0: off, -1: random);
	// sessions and retained messages persist under StoreDir/mqtt when
	// JetStream is on, in memory otherwise.
	MQTTHost string
	MQTTPort int
	// MQTTMaxSessionQueueMsgs and MQTTMaxSessionQueueBytes bound what each
	// session holds for its client, inflight and queued (0: 100,000
	// messages and 64 MiB; negative is an error); past them new QoS 1/2
	// messages for it are discarded, still acknowledged to publishers.
	MQTTMaxSessionQueueMsgs  int
	MQTTMaxSessionQueueBytes int
	// MQTTMaxRetainedMsgs and MQTTMaxRetainedBytes bound the retained
	// messages the server keeps, all in memory (0: 100,000 messages and
	// 64 MiB of topic + payload; negative is an error); a retained publish
	// past them is delivered and acknowledged but not retained.
	MQTTMaxRetainedMsgs  int
	MQTTMaxRetainedBytes int
	// MQTTTLS serves the MQTT port over TLS (mqtt { tls {...} }); the
	// client starts the handshake at once, as MQTT clients do. nil:
	// plaintext.
	MQTTTLS *TLSOptions

	// TLS for NATS clients on the client port; nil is plaintext.
	TLS *TLSOptions

	// LeafRemotes are the hubs this server joins as a leaf node
	// (leafnodes { remotes }), served by loop/leaf. LeafReconnect is the
	// delay before a new attempt after a link fails (leafnodes {
	// reconnect }); 0 means the default, 1s.
	LeafRemotes   []LeafRemote
	LeafReconnect time.Duration
	// LeafHost and LeafPort: the listener for leaf connections in
	// (leafnodes { port }; 0: off, -1: random). LeafUsername and
	// LeafPassword, when set, are what a leaf must log in with
	// (leafnodes { authorization }); LeafAuthTimeout bounds the wait for
	// its CONNECT (0: 2s).
	LeafHost                   string
	LeafPort                   int
	LeafUsername, LeafPassword string
	LeafAuthTimeout            time.Duration
	// LeafAccount is the account a leaf logging in with LeafUsername
	// binds to (leafnodes { authorization { account } }; "": $G). Without
	// LeafUsername a leaf logs in as a client user and binds to that
	// user's account, as nats-server does.
	LeafAccount string
	// LeafNkey, when set, is the public user nkey a leaf must log in
	// with, signing the hub's nonce (leafnodes { authorization { nkey }
	// }); it binds to LeafAccount. LeafUsers are several logins, each
	// bound to its own account (leafnodes { authorization { users [...]
	// } }). At most one of LeafUsername, LeafNkey and LeafUsers is set.
	LeafNkey  string
	LeafUsers []LeafUser
	// LeafCompression is the s2 mode offered to accepted leaves
	// (leafnodes { compression }), spelled as LeafRemote.Compression.
	LeafCompression string
	// LeafTLS makes accepted leaves use TLS (leafnodes { tls }): INFO
	// says tls_required and the handshake follows it (or comes first with
	// handshake_first); verify asks for the leaf's certificate.
	LeafTLS *TLSOptions

	// Websocket: the listener for NATS (and MQTT at /mqtt) over WebSocket
	// (port 0: off, -1: random); see wsconn.go.
	Websocket WebsocketOptions

	Debug, Trace bool
	LogWriter    io.Writer // where the server logs; nil means standard error

	// Logging as nats-server's (log.go): to LogFile, rotated past
	// LogSizeLimit bytes (0: never) keeping LogMaxFiles files, the live
	// one included (0: all); else to the local Syslog or RemoteSyslog
	// ("udp://host:514"); else to LogWriter. NoLogTime drops timestamps
	// (-T=false); LogTimeUTC writes them in UTC.
	LogFile      string
	LogSizeLimit int64
	LogMaxFiles  int
	NoLogTime    bool
	LogTimeUTC   bool
	Syslog       bool
	RemoteSyslog string

	// PidFile and ConfigFile are cmd/evnats's; the server only names them
	// in its start-up lines.
	PidFile    string
	ConfigFile string
}

// User is one entry of a users list, with optional permissions.
type User struct {
	Username    string
	Password    string // plain text, or a bcrypt hash ("$2a$...")
	Nkey        string // a user nkey ("U..."): logs in by signing the nonce; no Username
	Permissions *Permissions
}

// Account is one entry of the accounts block.
type Account struct {
	Name    string
	Users   []*User
	Exports []*Export
	Imports []*Import
	// JetStream gives the account streams of its own (server-wide
	// JetStream must be on), within JetStreamLimits.
	JetStream       bool
	JetStreamLimits AccountJSLimits
	// Limits bound the account's connections, subscriptions and
	// payloads (nats-server's account limits block, or an account
	// JWT's); nil: none.
	Limits *AccountLimits
	// Mappings rewrite the subjects published in the account.
	Mappings []*Mapping
}

// AccountLimits bound one account (-1: unlimited; 0 allows none, as in
// nats-server): MaxConnections counts its client connections on this
// server, MaxLeafNodes the leaf nodes bound to it, MaxSubscriptions and
// MaxPayload hold per connection (the smaller of the account's, the
// user's and the server's).
type AccountLimits struct {
	MaxConnections, MaxSubscriptions, MaxPayload, MaxLeafNodes int
}

// NoAccountLimits is an AccountLimits that limits nothing.
var NoAccountLimits = AccountLimits{MaxConnections: -1, MaxSubscriptions: -1, MaxPayload: -1, MaxLeafNodes: -1}

// AccountJSLimits bound one account's JetStream: bytes in memory and file
// streams, and streams (0: unlimited).
type AccountJSLimits struct {
	MaxMemory, MaxStore int64
	MaxStreams          int
	MaxConsumers        int // per stream, as nats-server's account max_consumers
}

// Export makes a stream or a service (exactly one of them, a subject that
// may hold wildcards) of an account importable by others: by every
// account, or only by those named in Accounts.
type Export struct {
	Stream, Service string
	// ResponseType of a service: "singleton" (the default: one response
	// per request), "stream" or "chunked" (any number until
	// ResponseThreshold, 2m when 0, passes).
	ResponseType      string
	ResponseThreshold time.Duration
	Accounts          []string
}

// Import brings another account's exported stream or service (exactly one
// of Stream and Service) into an account. A stream's messages appear under
// Prefix + "." + their subject (or To, when set); a service is requested
// on To here (its subject when To is empty).
type Import struct {
	Stream, Service *ImportSource
	Prefix, To      string
}

// ImportSource names what an import takes: an account's exported subject.
type ImportSource struct {
	Account, Subject string
}

// Permissions restricts the subjects a user may publish and subscribe to.
type Permissions struct {
	Publish   *SubjectPermission
	Subscribe *SubjectPermission
}

// SubjectPermission lists allowed and denied subject patterns. An empty
// Allow list allows everything not denied.
type SubjectPermission struct {
	Allow []string
	Deny  []string
}

func (o *Options) setDefaults() {
	if o.Host == "" {
		o.Host = DefaultHost
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.Loops <= 0 {
		o.Loops = runtime.GOMAXPROCS(0)
	}
	if o.IO == "" {
		o.IO = IOGnet
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxPayload > MaxPayloadLimit {
		o.MaxPayload = MaxPayloadLimit
	}
	if o.MaxControlLine <= 0 {
		o.MaxControlLine = DefaultMaxControlLine
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.MaxClosedClients == 0 {
		o.MaxClosedClients = DefaultMaxClosedClients
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.MaxPingsOut <= 0 {
		o.MaxPingsOut = DefaultMaxPingsOut
	}
	if o.WriteDeadline <= 0 {
		o.WriteDeadline = DefaultWriteDeadline
	}
	if o.FlowHighWater == 0 {
		o.FlowHighWater = min(o.MaxPending/4, DefaultFlowHighWater)
	}
	if o.FlowLowWater == 0 {
		o.FlowLowWater = o.FlowHighWater / 2
	}
	if o.FlowStallWindow == 0 {
		o.FlowStallWindow = DefaultFlowStallWindow
	}
	if o.TLS != nil {
		t := *o.TLS // the caller's stays as given
		o.TLS = &t
	}
	if o.TLS != nil && o.TLS.Timeout <= 0 {
		o.TLS.Timeout = DefaultTLSTimeout
	}
	if o.MQTTTLS != nil {
		t := *o.MQTTTLS
		if t.Timeout <= 0 {
			t.Timeout = DefaultTLSTimeout
		}
		t.HandshakeFirst, t.HandshakeFirstFallback = true, 0 // MQTT has no greeting to send first
		o.MQTTTLS = &t
	}
	if o.AuthTimeout <= 0 {
		o.AuthTimeout = DefaultAuthTimeout
		if o.TLS != nil {
			// As nats-server: CONNECT may come a second after the
			// longest handshake.
			o.AuthTimeout = o.TLS.Timeout + time.Second
		}
	}
	if o.LameDuckDuration <= 0 {
		o.LameDuckDuration = DefaultLameDuck
	}
	if o.MQTTHost == "" {
		o.MQTTHost = o.Host
	}
	if o.Websocket.Host == "" {
		o.Websocket.Host = o.Host
	}
	if o.Websocket.TLS != nil {
		t := *o.Websocket.TLS
		if t.Timeout <= 0 {
			t.Timeout = DefaultTLSTimeout
		}
		t.HandshakeFirst, t.HandshakeFirstFallback = true, 0 // the HTTP upgrade comes over TLS
		o.Websocket.TLS = &t
	}
	if o.StoreDir == "" {
		o.StoreDir = DefaultStoreDir
	}
	if o.LameDuckGrace <= 0 {
		o.LameDuckGrace = DefaultLameDuckGrace
	}
}

// validateFlow checks the flow-control settings after defaults, naming
// them as the configuration file does.
func (o *Options) validateFlow() error {
	switch {
	case o.FlowHighWater <= 0:
		return fmt.Errorf("loop: flow_high_water must be positive, got %d (max_pending %d)", o.FlowHighWater, o.MaxPending)
	case o.FlowHighWater > o.MaxPending:
		return fmt.Errorf("loop: flow_high_water %d is above max_pending %d: a subscriber would be cut before its publishers were slowed", o.FlowHighWater, o.MaxPending)
	case o.FlowLowWater <= 0:
		return fmt.Errorf("loop: flow_low_water must be positive, got %d", o.FlowLowWater)
	case o.FlowLowWater >= o.FlowHighWater:
		return fmt.Errorf("loop: flow_low_water %d must be below flow_high_water %d", o.FlowLowWater, o.FlowHighWater)
	case o.FlowStallWindow <= 0:
		return fmt.Errorf("loop: flow_stall_window must be positive, got %v", o.FlowStallWindow)
	}
	return nil
}

func (o *Options) authRequired() bool {
	if o.Token != "" || o.Username != "" || len(o.Users) > 0 {
		return true
	}
	for _, a := range o.Accounts {
		if len(a.Users) > 0 {
			return true
		}
	}
	return false
}

// LeafUser is one login of leafnodes { authorization { users [...] } }:
// a leaf that sends this user and password binds to Account ("": $G).
// Password may be a bcrypt hash.
type LeafUser struct {
	Username, Password, Account string
}

// LeafRemote is one hub a leaf connects to (leafnodes { remotes [ ... ] }).
type LeafRemote struct {
	// URLs are tried in turn: nats-leaf://[user:pass@]host:port (or
	// nats://, leafnode:// as nats-server accepts).
	URLs []string
	// Credentials is a .creds file (user JWT and nkey seed) that signs
	// the hub's nonce; empty for none.
	Credentials string
	// Nkey is a user nkey seed (SU...) that signs the hub's nonce
	// (remote { nkey }); not with Credentials.
	Nkey string
	// Account is the local account the link binds to ("" or "$G": the
	// global account): its interest is what the hub is told of, and the
	// hub's messages are published in it.
	Account string
	// Compression is the s2 mode asked for on the link, as nats-server
	// spells it: "off", "accept", "s2_auto" (also ""; the default),
	// "s2_uncompressed", "s2_fast", "s2_better" or "s2_best".
	Compression string
	// TLS secures the link (the remote's tls block): CAFile verifies the
	// hub (system roots when empty), CertFile and KeyFile are the leaf's
	// certificate if the hub asks for one, HandshakeFirst starts TLS
	// before the hub's INFO. A tls:// URL, or a hub that requires TLS,
	// makes the link TLS even without the block.
	TLS *TLSOptions
	// DenyImports are subjects (wildcards allowed) the leaf does not take
	// from the hub: no interest in them is shown and messages on them are
	// dropped. DenyExports are subjects it does not send to the hub.
	DenyImports, DenyExports []string
	// FirstInfoTimeout bounds the wait for the hub's first INFO (0: 1s).
	FirstInfoTimeout time.Duration
	// WSMasking makes a ws:// or wss:// link mask the frames it sends
	// (remote { ws_no_masking: false }). By default evnats asks the hub
	// for unmasked frames (nats-server's Nats-No-Masking header), which a
	// hub on a trusted link saves a pass over every byte; nats-server's
	// leaf asks only with ws_no_masking: true.
	WSMasking bool
}

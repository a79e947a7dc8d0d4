// Package monitor serves evnats' monitoring endpoints (/varz, /connz,
// /subsz, /jsz, /healthz, ...) and its native Prometheus /metrics.
//
// It knows nothing of the server's internals: the server hands it a Source,
// whose methods return snapshots taken safely in the context that owns each
// figure (see loop/connsnap.go). The JSON documents use nats-server 2.15's
// field names and query parameters, so tools and dashboards written for
// nats-server read them; the types below hold only the fields evnats fills.
//
// Concurrency: handlers run on net/http goroutines; they call the Source,
// which is safe for concurrent use, and keep no state of their own except
// the CPU sampler (cpu.go, its own mutex).
package monitor

import (
	"encoding/json"
	"time"
)

// Varz is the /varz document.
type Varz struct {
	ID               string            `json:"server_id"`
	Name             string            `json:"server_name"`
	Version          string            `json:"version"`
	Proto            int               `json:"proto"`
	GoVersion        string            `json:"go"`
	Host             string            `json:"host"`
	Port             int               `json:"port"`
	AuthRequired     bool              `json:"auth_required,omitempty"`
	TLSRequired      bool              `json:"tls_required,omitempty"`
	TLSVerify        bool              `json:"tls_verify,omitempty"`
	ConnectURLs      []string          `json:"connect_urls,omitempty"`
	MaxConn          int               `json:"max_connections"`
	MaxSubs          int               `json:"max_subscriptions,omitempty"`
	PingInterval     time.Duration     `json:"ping_interval"`
	MaxPingsOut      int               `json:"ping_max"`
	HTTPHost         string            `json:"http_host"`
	HTTPPort         int               `json:"http_port"`
	HTTPBasePath     string            `json:"http_base_path"`
	HTTPSPort        int               `json:"https_port"`
	AuthTimeout      float64           `json:"auth_timeout"`
	MaxControlLine   int32             `json:"max_control_line"`
	MaxPayload       int               `json:"max_payload"`
	MaxPending       int64             `json:"max_pending"`
	Cluster          struct{}          `json:"cluster"`
	Gateway          struct{}          `json:"gateway"`
	LeafNode         struct{}          `json:"leaf"`
	MQTT             MQTTVarz          `json:"mqtt"`
	Websocket        WebsocketVarz     `json:"websocket"`
	JetStream        JetStreamVarz     `json:"jetstream"`
	TLSTimeout       float64           `json:"tls_timeout"`
	WriteDeadline    time.Duration     `json:"write_deadline"`
	Start            time.Time         `json:"start"`
	Now              time.Time         `json:"now"`
	Uptime           string            `json:"uptime"`
	Mem              int64             `json:"mem"`
	Cores            int               `json:"cores"`
	MaxProcs         int               `json:"gomaxprocs"`
	CPU              float64           `json:"cpu"`
	Connections      int               `json:"connections"`
	TotalConnections uint64            `json:"total_connections"`
	Routes           int               `json:"routes"`
	Remotes          int               `json:"remotes"`
	Leafs            int               `json:"leafnodes"`
	InMsgs           int64             `json:"in_msgs"`
	InBytes          int64             `json:"in_bytes"`
	InClientMsgs     int64             `json:"in_client_msgs"`
	InClientBytes    int64             `json:"in_client_bytes"`
	OutMsgs          int64             `json:"out_msgs"`
	OutBytes         int64             `json:"out_bytes"`
	OutClientMsgs    int64             `json:"out_client_msgs"`
	OutClientBytes   int64             `json:"out_client_bytes"`
	SlowConsumers    int64             `json:"slow_consumers"`
	StaleConnections int64             `json:"stale_connections"`
	Subscriptions    uint32            `json:"subscriptions"`
	HTTPReqStats     map[string]uint64 `json:"http_req_stats"`
	ConfigLoadTime   time.Time         `json:"config_load_time"`
	SystemAccount    string            `json:"system_account,omitempty"`
	SlowStats        *KindCounts       `json:"slow_consumer_stats"`
	StaleStats       *KindCounts       `json:"stale_connection_stats,omitempty"`
	// evnats' own: the transport and how many event loops serve clients.
	IO    string `json:"evnats_io"`
	Loops int    `json:"evnats_loops"`
}

// KindCounts counts events by connection kind (evnats has clients only).
type KindCounts struct {
	Clients  uint64 `json:"clients"`
	Routes   uint64 `json:"routes"`
	Gateways uint64 `json:"gateways"`
	Leafs    uint64 `json:"leafs"`
}

// MQTTVarz is /varz's mqtt section (empty when MQTT is off).
type MQTTVarz struct {
	Host       string  `json:"host,omitempty"`
	Port       int     `json:"port,omitempty"`
	TLSTimeout float64 `json:"tls_timeout,omitempty"`
}

// WebsocketVarz is /varz's websocket section (empty when it is off).
type WebsocketVarz struct {
	Host        string `json:"host,omitempty"`
	Port        int    `json:"port,omitempty"`
	TLSRequired bool   `json:"tls_required,omitempty"`
	NoTLS       bool   `json:"no_tls,omitempty"`
	Compression bool   `json:"compression,omitempty"`
}

// JetStreamVarz is /varz's jetstream section.
type JetStreamVarz struct {
	Config *JetStreamConfig `json:"config,omitempty"`
	Stats  *JetStreamStats  `json:"stats,omitempty"`
}

// JetStreamConfig is JetStream's configuration as /varz and /jsz show it.
type JetStreamConfig struct {
	MaxMemory  int64  `json:"max_memory"`
	MaxStore   int64  `json:"max_storage"`
	StoreDir   string `json:"store_dir,omitempty"`
	SyncAlways bool   `json:"sync_always,omitempty"`
}

// JetStreamStats is JetStream's usage as /varz and /jsz show it.
type JetStreamStats struct {
	Memory         uint64   `json:"memory"`
	Store          uint64   `json:"storage"`
	ReservedMemory uint64   `json:"reserved_memory"`
	ReservedStore  uint64   `json:"reserved_storage"`
	Accounts       int      `json:"accounts"`
	HAAssets       int      `json:"ha_assets"`
	API            APIStats `json:"api"`
}

// APIStats counts $JS.API requests.
type APIStats struct {
	Level  int    `json:"level"`
	Total  uint64 `json:"total"`
	Errors uint64 `json:"errors"`
}

// Connz is the /connz document.
type Connz struct {
	ID       string      `json:"server_id"`
	Now      time.Time   `json:"now"`
	NumConns int         `json:"num_connections"`
	Total    int         `json:"total"`
	Offset   int         `json:"offset"`
	Limit    int         `json:"limit"`
	Conns    []*ConnInfo `json:"connections"`
}

// ConnInfo is one connection in /connz, open or closed.
type ConnInfo struct {
	Cid            uint64      `json:"cid"`
	Kind           string      `json:"kind,omitempty"`
	Type           string      `json:"type,omitempty"`
	IP             string      `json:"ip"`
	Port           int         `json:"port"`
	Start          time.Time   `json:"start"`
	LastActivity   time.Time   `json:"last_activity"`
	Stop           *time.Time  `json:"stop,omitempty"`
	Reason         string      `json:"reason,omitempty"`
	RTT            string      `json:"rtt,omitempty"`
	Uptime         string      `json:"uptime"`
	Idle           string      `json:"idle"`
	Pending        int         `json:"pending_bytes"`
	InMsgs         int64       `json:"in_msgs"`
	OutMsgs        int64       `json:"out_msgs"`
	InBytes        int64       `json:"in_bytes"`
	OutBytes       int64       `json:"out_bytes"`
	NumSubs        uint32      `json:"subscriptions"`
	Name           string      `json:"name,omitempty"`
	Lang           string      `json:"lang,omitempty"`
	Version        string      `json:"version,omitempty"`
	TLSVersion     string      `json:"tls_version,omitempty"`
	TLSCipher      string      `json:"tls_cipher_suite,omitempty"`
	AuthorizedUser string      `json:"authorized_user,omitempty"`
	Account        string      `json:"account,omitempty"`
	Subs           []string    `json:"subscriptions_list,omitempty"`
	SubsDetail     []SubDetail `json:"subscriptions_list_detail,omitempty"`
	MQTTClient     string      `json:"mqtt_client,omitempty"`

	// RTTDur is rtt as a duration, for sorting; set by the Source.
	RTTDur time.Duration `json:"-"`

	uptime, idle time.Duration // computed by the handler, for sorting
}

// SubDetail is one subscription in /connz?subs=detail and /subsz?subs=1.
type SubDetail struct {
	Account string `json:"account,omitempty"`
	Subject string `json:"subject"`
	Queue   string `json:"qgroup,omitempty"`
	Sid     string `json:"sid"`
	Msgs    int64  `json:"msgs"`
	Max     int64  `json:"max,omitempty"`
	Cid     uint64 `json:"cid"`
}

// Subsz is the /subsz document.
type Subsz struct {
	ID  string    `json:"server_id"`
	Now time.Time `json:"now"`
	SublistStats
	Total  int         `json:"total"`
	Offset int         `json:"offset"`
	Limit  int         `json:"limit"`
	Subs   []SubDetail `json:"subscriptions_list,omitempty"`
}

// SublistStats are the subscription table's figures.
type SublistStats struct {
	NumSubs      uint32  `json:"num_subscriptions"`
	NumCache     uint32  `json:"num_cache"`
	NumInserts   uint64  `json:"num_inserts"`
	NumRemoves   uint64  `json:"num_removes"`
	NumMatches   uint64  `json:"num_matches"`
	CacheHitRate float64 `json:"cache_hit_rate"`
	MaxFanout    uint32  `json:"max_fanout"`
	AvgFanout    float64 `json:"avg_fanout"`
}

// JSInfo is the /jsz document.
type JSInfo struct {
	JetStreamStats
	ID             string           `json:"server_id"`
	Now            time.Time        `json:"now"`
	Disabled       bool             `json:"disabled,omitempty"`
	Config         JetStreamConfig  `json:"config,omitempty"`
	Streams        int              `json:"streams"`
	Consumers      int              `json:"consumers"`
	Messages       uint64           `json:"messages"`
	Bytes          uint64           `json:"bytes"`
	AccountDetails []*AccountDetail `json:"account_details,omitempty"`
	Total          int              `json:"total"`
}

// AccountDetail is one account's JetStream in /jsz?accounts=1.
type AccountDetail struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	JetStreamStats
	Streams []StreamDetail `json:"stream_detail,omitempty"`
}

// StreamDetail is one stream in /jsz?streams=1. Config, State and each
// consumer are the JetStream API's own JSON.
type StreamDetail struct {
	Name     string            `json:"name"`
	Created  time.Time         `json:"created"`
	Cluster  json.RawMessage   `json:"cluster,omitempty"`
	Config   json.RawMessage   `json:"config,omitempty"`
	State    json.RawMessage   `json:"state,omitempty"`
	Consumer []json.RawMessage `json:"consumer_detail,omitempty"`
}

// HealthStatus is the /healthz document.
type HealthStatus struct {
	Status     string `json:"status"`
	StatusCode int    `json:"status_code,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Accountz is the /accountz document.
type Accountz struct {
	ID            string       `json:"server_id"`
	Now           time.Time    `json:"now"`
	SystemAccount string       `json:"system_account,omitempty"`
	Accounts      []string     `json:"accounts,omitempty"`
	Account       *AccountInfo `json:"account_detail,omitempty"`
}

// AccountInfo is /accountz?acc=NAME's detail.
type AccountInfo struct {
	AccountName string        `json:"account_name"`
	LastUpdate  time.Time     `json:"update_time,omitempty"`
	IsSystem    bool          `json:"is_system,omitempty"`
	Expired     bool          `json:"expired"`
	Complete    bool          `json:"complete"`
	JetStream   bool          `json:"jetstream_enabled"`
	LeafCnt     int           `json:"leafnode_connections"`
	ClientCnt   int           `json:"client_connections"`
	SubCnt      uint32        `json:"subscriptions"`
	Sublist     *SublistStats `json:"sublist_stats,omitempty"`
}

// AccountStatz is the /accstatz document.
type AccountStatz struct {
	ID       string         `json:"server_id"`
	Now      time.Time      `json:"now"`
	Accounts []*AccountStat `json:"account_statz"`
}

// AccountStat is one account's traffic.
type AccountStat struct {
	Account       string   `json:"acc"`
	Name          string   `json:"name"`
	Conns         int      `json:"conns"`
	LeafNodes     int      `json:"leafnodes"`
	TotalConns    int      `json:"total_conns"`
	NumSubs       uint32   `json:"num_subscriptions"`
	Sent          MsgBytes `json:"sent"`
	Received      MsgBytes `json:"received"`
	SlowConsumers int64    `json:"slow_consumers"`
}

// MsgBytes is a message and byte count.
type MsgBytes struct {
	Msgs  int64 `json:"msgs"`
	Bytes int64 `json:"bytes"`
}

// Routez is the /routez document: evnats runs no cluster.
type Routez struct {
	ID        string    `json:"server_id"`
	Name      string    `json:"server_name"`
	Now       time.Time `json:"now"`
	NumRoutes int       `json:"num_routes"`
	Routes    []any     `json:"routes"`
}

// Gatewayz is the /gatewayz document: no gateways.
type Gatewayz struct {
	ID               string           `json:"server_id"`
	Now              time.Time        `json:"now"`
	OutboundGateways map[string]any   `json:"outbound_gateways"`
	InboundGateways  map[string][]any `json:"inbound_gateways"`
}

// Leafz is the /leafz document: the leaf-node links that are up.
type Leafz struct {
	ID       string      `json:"server_id"`
	Now      time.Time   `json:"now"`
	NumLeafs int         `json:"leafnodes"`
	Leafs    []*LeafInfo `json:"leafs"`
}

// LeafInfo is one leaf-node link in /leafz, with nats-server's field
// names. IsSpoke: this server is the leaf (the link is one of its
// remotes). Subs, the peer's interest held here, is filled with ?subs=1.
type LeafInfo struct {
	ID          uint64   `json:"id"`
	Name        string   `json:"name"`
	IsSpoke     bool     `json:"is_spoke"`
	Account     string   `json:"account"`
	IP          string   `json:"ip"`
	Port        int      `json:"port"`
	RTT         string   `json:"rtt,omitempty"`
	InMsgs      int64    `json:"in_msgs"`
	OutMsgs     int64    `json:"out_msgs"`
	InBytes     int64    `json:"in_bytes"`
	OutBytes    int64    `json:"out_bytes"`
	NumSubs     uint32   `json:"subscriptions"`
	Subs        []string `json:"subscriptions_list,omitempty"`
	Compression string   `json:"compression,omitempty"`
}

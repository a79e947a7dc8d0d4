package monitor

import "time"

// Source is what the endpoints read; the server implements it. Every
// method is safe for concurrent use and returns a snapshot the caller owns.
type Source interface {
	// Varz fills everything but the request counters and CPU, which the
	// handler adds.
	Varz() *Varz
	// Conns snapshots the open connections, each in the context that owns
	// it; with subs, their subscriptions too.
	Conns(subs bool) []*ConnInfo
	// Closed returns the recently closed connections, oldest first.
	Closed() []*ConnInfo
	// Subs lists every client subscription and Sublist's figures.
	Subs() ([]SubDetail, SublistStats)
	// JetStream reports JetStream's usage; nil when it is off. Consumers'
	// figures are filled with consumers, the streams' JSON with detail.
	JetStream(consumers, detail bool) *JSUsage
	// Loops reports each event loop's counters (none on the goroutine
	// transport).
	Loops() []LoopStat
	// MQTT reports MQTT's sessions and retained messages; ok is false
	// when MQTT is off.
	MQTT() (st MQTTStat, ok bool)
	// Leafs lists the leaf-node links that are up (of account acc only,
	// unless it is ""), with the peer's subscriptions when subs is set.
	Leafs(subs bool, acc string) []*LeafInfo
}

// AccountSource is implemented by a Source with accounts; without it
// /accountz knows only the global account.
type AccountSource interface {
	// AccountNames lists every account, sorted.
	AccountNames() []string
	// AccountInfo describes one account; ok is false when there is none
	// by that name.
	AccountInfo(name string) (info *AccountInfo, ok bool)
}

// AccountStatSource is implemented by a Source with accounts; without it
// /accstatz knows only the global account.
type AccountStatSource interface {
	// AccountStats reports every account's connections and traffic, by
	// name.
	AccountStats() []*AccountStat
}

// JSUsage is JetStream's state at one moment.
type JSUsage struct {
	Config   JetStreamConfig
	Stats    JetStreamStats // every account's, summed
	Streams  []StreamUsage
	Accounts []AccountJSUsage // by name; empty: every stream is the global account's
}

// AccountJSUsage is one account's JetStream figures.
type AccountJSUsage struct {
	Name  string
	Stats JetStreamStats
}

// StreamUsage is one stream: figures for /metrics and the JSON /jsz shows.
type StreamUsage struct {
	Account       string // "" or the account's name
	Name, Storage string
	Created       time.Time
	Msgs, Bytes   uint64
	NumConsumers  int
	Consumers     []ConsumerUsage // with consumers only
	Detail        StreamDetail    // Config, State, Cluster, Consumer filled
}

// ConsumerUsage is one consumer's figures.
type ConsumerUsage struct {
	Name        string
	Pending     uint64 // messages left to deliver
	AckPending  int
	Redelivered int
	Waiting     int
}

// LoopStat is one event loop's counters; each loop writes its own and a
// scrape reads them on that loop.
type LoopStat struct {
	Index        int           `json:"loop"`
	Conns        int           `json:"connections"`
	Reads        uint64        `json:"reads"`         // OnTraffic calls (socket reads handed to the parser)
	Flushes      uint64        `json:"flushes"`       // end-of-tick flushes
	Writevs      uint64        `json:"writev_calls"`  // writev calls
	Iovecs       uint64        `json:"writev_iovecs"` // buffers written by them
	InboxBatches uint64        `json:"inbox_batches"` // batches drained from other loops
	InboxMsgs    uint64        `json:"inbox_msgs"`    // messages in them
	Busy         time.Duration `json:"busy_ns"`       // time spent reading, draining and flushing
	InMsgs       int64         `json:"in_msgs"`       // messages published on the loop
	OutMsgs      int64         `json:"out_msgs"`      // messages delivered by the loop
}

// Loopz is the /loopz document (evnats' own): each event loop's counters.
type Loopz struct {
	ID    string     `json:"server_id"`
	Now   time.Time  `json:"now"`
	IO    string     `json:"io"`
	Loops []LoopStat `json:"loops"`
}

// MQTTStat is MQTT's state.
type MQTTStat struct {
	Sessions      int // sessions known (connected or persisted)
	Connected     int // connections
	Retained      int // retained messages
	RetainedBytes int64
}

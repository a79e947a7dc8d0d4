package monitor

import (
	"strconv"
	"strings"
)

// The evnats_ metrics are written straight into the response buffer
// (exposition.go) from what the Source reports on each scrape, so
// counting costs the message path nothing beyond the counters the server
// keeps anyway (per-loop shards and loop-owned fields, see
// docs/ARCHITECTURE.md "Monitoring"), and a scrape allocates little.

type metric struct {
	name, help string
	labels     []string
}

// kind is the metric's Prometheus type: every counter's name ends in
// _total, as the naming conventions ask.
func (m metric) kind() string {
	if strings.HasSuffix(m.name, "_total") {
		return "counter"
	}
	return "gauge"
}

var (
	mInfo          = metric{"evnats_info", "Constant 1, labelled with the server's id, name, version and transport.", []string{"server_id", "server_name", "version", "io"}}
	mStart         = metric{"evnats_start_time_seconds", "When the server started, in Unix seconds.", nil}
	mCfgLoad       = metric{"evnats_config_load_time_seconds", "When the configuration was last loaded or reloaded, in Unix seconds.", nil}
	mConns         = metric{"evnats_connections", "Open client connections (NATS, WebSocket and MQTT).", nil}
	mTotalConns    = metric{"evnats_connections_total", "Client connections accepted since start.", nil}
	mSubs          = metric{"evnats_subscriptions", "Subscriptions in the subscription table.", nil}
	mInMsgs        = metric{"evnats_in_msgs_total", "Messages received from clients.", nil}
	mOutMsgs       = metric{"evnats_out_msgs_total", "Messages delivered to clients.", nil}
	mInBytes       = metric{"evnats_in_bytes_total", "Payload bytes received from clients.", nil}
	mOutBytes      = metric{"evnats_out_bytes_total", "Payload bytes delivered to clients.", nil}
	mSlow          = metric{"evnats_slow_consumers_total", "Clients cut off as slow consumers.", nil}
	mStale         = metric{"evnats_stale_connections_total", "Connections closed for not answering pings.", nil}
	mMaxConns      = metric{"evnats_max_connections", "The max_connections limit in force.", nil}
	mMaxPayload    = metric{"evnats_max_payload_bytes", "The max_payload limit in force.", nil}
	mLoopConns     = metric{"evnats_loop_connections", "Connections owned by the event loop.", []string{"loop"}}
	mLoopReads     = metric{"evnats_loop_reads_total", "Socket reads the loop parsed (one per readable connection per tick); messages per read is rate(evnats_loop_in_msgs_total) / rate(this).", []string{"loop"}}
	mLoopFlushes   = metric{"evnats_loop_flushes_total", "End-of-tick flushes (one per loop iteration that produced output); messages delivered per flush is rate(evnats_loop_out_msgs_total) / rate(this).", []string{"loop"}}
	mLoopWritev    = metric{"evnats_loop_writev_calls_total", "writev calls the loop made.", []string{"loop"}}
	mLoopIovecs    = metric{"evnats_loop_writev_iovecs_total", "Buffers those writev calls carried; iovecs per call is the ratio of the two rates.", []string{"loop"}}
	mLoopBatches   = metric{"evnats_loop_inbox_batches_total", "Batches of messages from other loops the loop drained.", []string{"loop"}}
	mLoopBatchMsgs = metric{"evnats_loop_inbox_msgs_total", "Messages in those batches.", []string{"loop"}}
	mLoopBusy      = metric{"evnats_loop_busy_seconds_total", "Time the loop spent reading, draining and flushing; its rate is the loop's load (1 = always busy).", []string{"loop"}}
	mLoopIn        = metric{"evnats_loop_in_msgs_total", "Messages published by the loop's connections.", []string{"loop"}}
	mLoopOut       = metric{"evnats_loop_out_msgs_total", "Messages the loop delivered to its connections.", []string{"loop"}}
	mJSEnabled     = metric{"evnats_jetstream_enabled", "1 when JetStream is on.", nil}
	mJSAPI         = metric{"evnats_jetstream_api_requests_total", "JetStream API requests answered.", nil}
	mJSAPIErr      = metric{"evnats_jetstream_api_errors_total", "JetStream API requests answered with an error.", nil}
	mJSMem         = metric{"evnats_jetstream_memory_bytes", "Bytes held by memory streams.", nil}
	mJSStore       = metric{"evnats_jetstream_storage_bytes", "Bytes held by file streams.", nil}
	mJSStreams     = metric{"evnats_jetstream_streams", "Streams.", nil}
	mStMsgs        = metric{"evnats_jetstream_stream_messages", "Messages in the stream.", []string{"stream", "storage"}}
	mStBytes       = metric{"evnats_jetstream_stream_bytes", "Bytes in the stream.", []string{"stream", "storage"}}
	mStConsumers   = metric{"evnats_jetstream_stream_consumers", "Consumers of the stream.", []string{"stream"}}
	mStPending     = metric{"evnats_jetstream_stream_pending", "Messages its consumers have yet to deliver, summed.", []string{"stream"}}
	mStAckPending  = metric{"evnats_jetstream_stream_ack_pending", "Deliveries its consumers await acks for, summed.", []string{"stream"}}
	mStRedelivered = metric{"evnats_jetstream_stream_redelivered", "Messages its consumers redelivered and await acks for, summed.", []string{"stream"}}
	mCoPending     = metric{"evnats_jetstream_consumer_pending", "Messages the consumer has yet to deliver.", []string{"stream", "consumer"}}
	mCoAckPending  = metric{"evnats_jetstream_consumer_ack_pending", "Deliveries the consumer awaits acks for.", []string{"stream", "consumer"}}
	mCoRedeliv     = metric{"evnats_jetstream_consumer_redelivered", "Messages the consumer redelivered, awaiting acks.", []string{"stream", "consumer"}}
	mCoWaiting     = metric{"evnats_jetstream_consumer_waiting", "Pull requests waiting at the consumer.", []string{"stream", "consumer"}}
	mMQTTSessions  = metric{"evnats_mqtt_sessions", "MQTT sessions (connected or persisted).", nil}
	mMQTTConns     = metric{"evnats_mqtt_connections", "Open MQTT connections.", nil}
	mMQTTRetained  = metric{"evnats_mqtt_retained_messages", "Retained MQTT messages.", nil}
	mMQTTRetBytes  = metric{"evnats_mqtt_retained_bytes", "Payload bytes of retained MQTT messages.", nil}
	mLeafs         = metric{"evnats_leafnodes", "Leaf-node links that are up (to hubs and from leaves).", nil}
	mLeafInMsgs    = metric{"evnats_leafnode_in_msgs_total", "Messages received over the leaf-node link.", leafLabels}
	mLeafOutMsgs   = metric{"evnats_leafnode_out_msgs_total", "Messages sent over the leaf-node link.", leafLabels}
	mLeafInBytes   = metric{"evnats_leafnode_in_bytes_total", "Payload bytes received over the leaf-node link.", leafLabels}
	mLeafOutBytes  = metric{"evnats_leafnode_out_bytes_total", "Payload bytes sent over the leaf-node link.", leafLabels}
	mLeafSubs      = metric{"evnats_leafnode_subscriptions", "The peer's interest held for the leaf-node link.", leafLabels}
)

// leafLabels name one leaf-node link: its id (counters restart with a new
// id when a link reconnects), the peer server's name, its account and
// whether this server is the leaf ("true") or the hub.
var leafLabels = []string{"id", "name", "account", "is_spoke"}

// Metrics lists every evnats_ metric, for the documentation test.
var Metrics = []metric{mInfo, mStart, mCfgLoad, mConns, mTotalConns, mSubs, mInMsgs, mOutMsgs, mInBytes,
	mOutBytes, mSlow, mStale, mMaxConns, mMaxPayload, mLoopConns, mLoopReads, mLoopFlushes, mLoopWritev,
	mLoopIovecs, mLoopBatches, mLoopBatchMsgs, mLoopBusy, mLoopIn, mLoopOut, mJSEnabled, mJSAPI, mJSAPIErr,
	mJSMem, mJSStore, mJSStreams, mStMsgs, mStBytes, mStConsumers, mStPending, mStAckPending, mStRedelivered,
	mCoPending, mCoAckPending, mCoRedeliv, mCoWaiting, mMQTTSessions, mMQTTConns, mMQTTRetained, mMQTTRetBytes,
	mLeafs, mLeafInMsgs, mLeafOutMsgs, mLeafInBytes, mLeafOutBytes, mLeafSubs}

// MetricNames returns the name of every evnats_ metric.
func MetricNames() []string {
	names := make([]string, len(Metrics))
	for i, m := range Metrics {
		names[i] = m.name
	}
	return names
}

// appendMetrics appends every evnats_ metric family in the text
// exposition format, each family's samples together.
func (m *Monitor) appendMetrics(b []byte) []byte {
	e := expo{b: b}
	src := m.src
	v := src.Varz()
	e.float(mInfo, 1, v.ID, v.Name, v.Version, v.IO)
	e.float(mStart, float64(v.Start.UnixNano())/1e9)
	e.float(mCfgLoad, float64(v.ConfigLoadTime.UnixNano())/1e9)
	e.int(mConns, int64(v.Connections))
	e.uint(mTotalConns, v.TotalConnections)
	e.uint(mSubs, uint64(v.Subscriptions))
	e.int(mInMsgs, v.InMsgs)
	e.int(mOutMsgs, v.OutMsgs)
	e.int(mInBytes, v.InBytes)
	e.int(mOutBytes, v.OutBytes)
	e.int(mSlow, v.SlowConsumers)
	e.int(mStale, v.StaleConnections)
	e.int(mMaxConns, int64(v.MaxConn))
	e.int(mMaxPayload, int64(v.MaxPayload))

	loops := src.Loops()
	var idx [16]byte
	perLoop := func(mt metric, f func(l *LoopStat) uint64) {
		for i := range loops {
			e.uint(mt, f(&loops[i]), string(strconv.AppendInt(idx[:0], int64(loops[i].Index), 10)))
		}
	}
	perLoop(mLoopConns, func(l *LoopStat) uint64 { return uint64(l.Conns) })
	perLoop(mLoopReads, func(l *LoopStat) uint64 { return l.Reads })
	perLoop(mLoopFlushes, func(l *LoopStat) uint64 { return l.Flushes })
	perLoop(mLoopWritev, func(l *LoopStat) uint64 { return l.Writevs })
	perLoop(mLoopIovecs, func(l *LoopStat) uint64 { return l.Iovecs })
	perLoop(mLoopBatches, func(l *LoopStat) uint64 { return l.InboxBatches })
	perLoop(mLoopBatchMsgs, func(l *LoopStat) uint64 { return l.InboxMsgs })
	for i := range loops {
		e.float(mLoopBusy, loops[i].Busy.Seconds(), string(strconv.AppendInt(idx[:0], int64(loops[i].Index), 10)))
	}
	perLoop(mLoopIn, func(l *LoopStat) uint64 { return uint64(l.InMsgs) })
	perLoop(mLoopOut, func(l *LoopStat) uint64 { return uint64(l.OutMsgs) })

	if u := src.JetStream(true, false); u == nil {
		e.int(mJSEnabled, 0)
	} else {
		e.int(mJSEnabled, 1)
		e.int(mJSAPI, int64(u.Stats.API.Total))
		e.int(mJSAPIErr, int64(u.Stats.API.Errors))
		e.uint(mJSMem, u.Stats.Memory)
		e.uint(mJSStore, u.Stats.Store)
		e.int(mJSStreams, int64(len(u.Streams)))
		ss := u.Streams
		for _, s := range ss {
			e.uint(mStMsgs, s.Msgs, s.Name, s.Storage)
		}
		for _, s := range ss {
			e.uint(mStBytes, s.Bytes, s.Name, s.Storage)
		}
		for _, s := range ss {
			e.int(mStConsumers, int64(s.NumConsumers), s.Name)
		}
		sum := func(mt metric, f func(c *ConsumerUsage) int64) {
			for _, s := range ss {
				var n int64
				for i := range s.Consumers {
					n += f(&s.Consumers[i])
				}
				e.int(mt, n, s.Name)
			}
		}
		each := func(mt metric, f func(c *ConsumerUsage) int64) {
			for _, s := range ss {
				for i := range s.Consumers {
					e.int(mt, f(&s.Consumers[i]), s.Name, s.Consumers[i].Name)
				}
			}
		}
		pending := func(c *ConsumerUsage) int64 { return int64(c.Pending) }
		ackPending := func(c *ConsumerUsage) int64 { return int64(c.AckPending) }
		redelivered := func(c *ConsumerUsage) int64 { return int64(c.Redelivered) }
		sum(mStPending, pending)
		sum(mStAckPending, ackPending)
		sum(mStRedelivered, redelivered)
		each(mCoPending, pending)
		each(mCoAckPending, ackPending)
		each(mCoRedeliv, redelivered)
		each(mCoWaiting, func(c *ConsumerUsage) int64 { return int64(c.Waiting) })
	}

	if mq, ok := src.MQTT(); ok {
		e.int(mMQTTSessions, int64(mq.Sessions))
		e.int(mMQTTConns, int64(mq.Connected))
		e.int(mMQTTRetained, int64(mq.Retained))
		e.int(mMQTTRetBytes, mq.RetainedBytes)
	}

	leafs := src.Leafs(false, "")
	e.int(mLeafs, int64(len(leafs)))
	perLeaf := func(mt metric, f func(l *LeafInfo) int64) {
		for _, l := range leafs {
			e.int(mt, f(l), strconv.FormatUint(l.ID, 10), l.Name, l.Account, strconv.FormatBool(l.IsSpoke))
		}
	}
	perLeaf(mLeafInMsgs, func(l *LeafInfo) int64 { return l.InMsgs })
	perLeaf(mLeafOutMsgs, func(l *LeafInfo) int64 { return l.OutMsgs })
	perLeaf(mLeafInBytes, func(l *LeafInfo) int64 { return l.InBytes })
	perLeaf(mLeafOutBytes, func(l *LeafInfo) int64 { return l.OutBytes })
	perLeaf(mLeafSubs, func(l *LeafInfo) int64 { return int64(l.NumSubs) })
	return e.b
}

package monitor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector is /metrics: a prometheus.Collector that reads the Source on
// each scrape, so counting costs the message path nothing beyond the
// counters the server keeps anyway (per-loop shards and loop-owned
// fields, see docs/ARCHITECTURE.md "Monitoring").
type collector struct {
	m     *Monitor
	descs []*prometheus.Desc
}

type metric struct {
	name, help string
	labels     []string
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

var descs = func() map[string]*prometheus.Desc {
	d := make(map[string]*prometheus.Desc, len(Metrics))
	for _, m := range Metrics {
		d[m.name] = prometheus.NewDesc(m.name, m.help, m.labels, nil)
	}
	return d
}()

func newCollector(m *Monitor) *collector { return &collector{m: m} }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	emit := func(m metric, t prometheus.ValueType, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(descs[m.name], t, v, labels...)
	}
	gauge := func(m metric, v float64, labels ...string) { emit(m, prometheus.GaugeValue, v, labels...) }
	counter := func(m metric, v float64, labels ...string) { emit(m, prometheus.CounterValue, v, labels...) }

	src := c.m.src
	v := src.Varz()
	gauge(mInfo, 1, v.ID, v.Name, v.Version, v.IO)
	gauge(mStart, float64(v.Start.UnixNano())/1e9)
	gauge(mCfgLoad, float64(v.ConfigLoadTime.UnixNano())/1e9)
	gauge(mConns, float64(v.Connections))
	counter(mTotalConns, float64(v.TotalConnections))
	gauge(mSubs, float64(v.Subscriptions))
	counter(mInMsgs, float64(v.InMsgs))
	counter(mOutMsgs, float64(v.OutMsgs))
	counter(mInBytes, float64(v.InBytes))
	counter(mOutBytes, float64(v.OutBytes))
	counter(mSlow, float64(v.SlowConsumers))
	counter(mStale, float64(v.StaleConnections))
	gauge(mMaxConns, float64(v.MaxConn))
	gauge(mMaxPayload, float64(v.MaxPayload))

	for _, l := range src.Loops() {
		i := strconv.Itoa(l.Index)
		gauge(mLoopConns, float64(l.Conns), i)
		counter(mLoopReads, float64(l.Reads), i)
		counter(mLoopFlushes, float64(l.Flushes), i)
		counter(mLoopWritev, float64(l.Writevs), i)
		counter(mLoopIovecs, float64(l.Iovecs), i)
		counter(mLoopBatches, float64(l.InboxBatches), i)
		counter(mLoopBatchMsgs, float64(l.InboxMsgs), i)
		counter(mLoopBusy, l.Busy.Seconds(), i)
		counter(mLoopIn, float64(l.InMsgs), i)
		counter(mLoopOut, float64(l.OutMsgs), i)
	}

	if u := src.JetStream(true, false); u == nil {
		gauge(mJSEnabled, 0)
	} else {
		gauge(mJSEnabled, 1)
		counter(mJSAPI, float64(u.Stats.API.Total))
		counter(mJSAPIErr, float64(u.Stats.API.Errors))
		gauge(mJSMem, float64(u.Stats.Memory))
		gauge(mJSStore, float64(u.Stats.Store))
		gauge(mJSStreams, float64(len(u.Streams)))
		for _, s := range u.Streams {
			gauge(mStMsgs, float64(s.Msgs), s.Name, s.Storage)
			gauge(mStBytes, float64(s.Bytes), s.Name, s.Storage)
			gauge(mStConsumers, float64(s.NumConsumers), s.Name)
			var pend, ack, red float64
			for _, co := range s.Consumers {
				pend += float64(co.Pending)
				ack += float64(co.AckPending)
				red += float64(co.Redelivered)
				gauge(mCoPending, float64(co.Pending), s.Name, co.Name)
				gauge(mCoAckPending, float64(co.AckPending), s.Name, co.Name)
				gauge(mCoRedeliv, float64(co.Redelivered), s.Name, co.Name)
				gauge(mCoWaiting, float64(co.Waiting), s.Name, co.Name)
			}
			gauge(mStPending, pend, s.Name)
			gauge(mStAckPending, ack, s.Name)
			gauge(mStRedelivered, red, s.Name)
		}
	}

	if mq, ok := src.MQTT(); ok {
		gauge(mMQTTSessions, float64(mq.Sessions))
		gauge(mMQTTConns, float64(mq.Connected))
		gauge(mMQTTRetained, float64(mq.Retained))
		gauge(mMQTTRetBytes, float64(mq.RetainedBytes))
	}

	leafs := src.Leafs(false, "")
	gauge(mLeafs, float64(len(leafs)))
	for _, l := range leafs {
		lb := []string{strconv.FormatUint(l.ID, 10), l.Name, l.Account, strconv.FormatBool(l.IsSpoke)}
		counter(mLeafInMsgs, float64(l.InMsgs), lb...)
		counter(mLeafOutMsgs, float64(l.OutMsgs), lb...)
		counter(mLeafInBytes, float64(l.InBytes), lb...)
		counter(mLeafOutBytes, float64(l.OutBytes), lb...)
		gauge(mLeafSubs, float64(l.NumSubs), lb...)
	}
}

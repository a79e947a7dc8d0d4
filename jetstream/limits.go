package jetstream

// Concurrency: pure validation and values; any goroutine, no locks.

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// Size limits on free-text config fields, as nats-server's.
const (
	maxDescriptionLen = 4 * 1024
	maxMetadataLen    = 128 * 1024
	minMaxAge         = 100 * time.Millisecond // also the smallest duplicate window
)

// streamLimits normalises a stream config's numeric limits as nats-server
// does outside pedantic mode: 0 and anything below -1 mean unlimited (-1);
// negative durations and a duplicate window beyond max_age are refused.
func streamLimits(cfg *StreamConfig) *APIError {
	bad := func(msg string) *APIError { return newErr(errStreamConfig, "err", msg) }
	if len(cfg.Description) > maxDescriptionLen {
		return bad("stream description is too long, maximum allowed is " + strconv.Itoa(maxDescriptionLen))
	}
	if metadataLen(cfg.Metadata) > maxMetadataLen {
		return bad("stream metadata exceeds maximum size of " + strconv.Itoa(maxMetadataLen) + " bytes")
	}
	if cfg.Replicas < 0 {
		return newErr(errNegativeReplicas)
	}
	if cfg.ConsumerLimits.InactiveThreshold < 0 || cfg.ConsumerLimits.MaxAckPending < 0 {
		return bad("consumer limits can not be negative")
	}
	for _, p := range []*int64{&cfg.MaxMsgs, &cfg.MaxBytes, &cfg.MaxMsgsPerSubject} {
		if *p == 0 || *p < -1 {
			*p = -1
		}
	}
	if cfg.MaxMsgSize == 0 || cfg.MaxMsgSize < -1 {
		cfg.MaxMsgSize = -1
	}
	if cfg.MaxConsumers == 0 || cfg.MaxConsumers < -1 {
		cfg.MaxConsumers = -1
	}
	if cfg.MaxAge < 0 {
		return bad("max age can not be negative")
	}
	if cfg.MaxAge != 0 && cfg.MaxAge < minMaxAge {
		return bad("max age needs to be >= 100ms")
	}
	if cfg.Duplicates == 0 && !cfg.copies() { // as nats-server: a mirror or source stream has no default window
		cfg.Duplicates = defaultDuplicateWindow
		if cfg.MaxAge != 0 && cfg.MaxAge < cfg.Duplicates {
			cfg.Duplicates = cfg.MaxAge
		}
	}
	if cfg.Duplicates < 0 {
		return bad("duplicates window can not be negative")
	}
	if cfg.MaxAge != 0 && cfg.Duplicates > cfg.MaxAge {
		return bad("duplicates window can not be larger then max age")
	}
	if cfg.Duplicates > 0 && cfg.Duplicates < minMaxAge {
		return bad("duplicates window needs to be >= 100ms")
	}
	return nil
}

// checkConsumerLimits normalises a consumer config's numbers as nats-server
// does outside pedantic mode (negative counts and durations become their
// defaults) and refuses what it refuses: negative replicas, ack wait and
// backoff, oversized description and metadata.
func checkConsumerLimits(cfg *ConsumerConfig) *APIError {
	if len(cfg.Description) > maxDescriptionLen {
		return newErr(errConsumerDescLong, "max", strconv.Itoa(maxDescriptionLen))
	}
	if metadataLen(cfg.Metadata) > maxMetadataLen {
		return newErr(errConsumerMetaLen, "limit", strconv.Itoa(maxMetadataLen))
	}
	if cfg.Replicas < 0 {
		return newErr(errNegativeReplicas)
	}
	if cfg.AckWait < 0 {
		return newErr(errAckWaitNegative)
	}
	for _, b := range cfg.BackOff {
		if b < 0 {
			return newErr(errBackOffNegative)
		}
	}
	if cfg.MaxDeliver < -1 {
		cfg.MaxDeliver = -1
	}
	if cfg.MaxAckPending < -1 {
		cfg.MaxAckPending = -1
	}
	for _, p := range []*int{&cfg.MaxWaiting, &cfg.MaxRequestBatch, &cfg.MaxRequestBytes} {
		*p = max(*p, 0)
	}
	for _, p := range []*time.Duration{&cfg.MaxRequestExpires, &cfg.Heartbeat, &cfg.InactiveThreshold} {
		*p = max(*p, 0)
	}
	return nil
}

func metadataLen(md map[string]string) int {
	n := 0
	for k, v := range md {
		n += len(k) + len(v)
	}
	return n
}

// applyConsumerLimits fills a consumer's unset inactive_threshold and
// max_ack_pending from its stream's consumer_limits, before the defaults.
func applyConsumerLimits(lim ConsumerLimits, cfg *ConsumerConfig) {
	if cfg.MaxAckPending == 0 {
		cfg.MaxAckPending = lim.MaxAckPending
	}
	if cfg.InactiveThreshold == 0 {
		cfg.InactiveThreshold = lim.InactiveThreshold
	}
}

// overConsumerLimits refuses a consumer above its stream's consumer_limits.
func overConsumerLimits(lim ConsumerLimits, cfg ConsumerConfig) *APIError {
	if lim.MaxAckPending > 0 && cfg.MaxAckPending > lim.MaxAckPending {
		return newErr(errMaxAckPendingOver, "limit", strconv.Itoa(lim.MaxAckPending))
	}
	if lim.InactiveThreshold > 0 && cfg.InactiveThreshold > lim.InactiveThreshold {
		return newErr(errInactiveOver, "limit", lim.InactiveThreshold.String())
	}
	return nil
}

// limitsViolated names the consumers a stream update's consumer_limits
// would leave above them, which refuses the update, as nats-server.
func limitsViolated(st *stream, lim ConsumerLimits) *APIError {
	var names []string
	for name, c := range st.consumers {
		if overConsumerLimits(lim, c.cfg) != nil {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	sort.Strings(names)
	return newErr(errStreamUpdate, "err", "change to limits violates consumers: "+strings.Join(names, ", "))
}

package jetstream

// Concurrency: pure validation; any goroutine, no locks.

import (
	"fmt"
)

// persist_mode, as nats-server 2.12: "default" (or absent) acknowledges a
// publish once its write is done per the sync policy; "async" acknowledges
// it as soon as the write is queued to the store's Writer goroutine, so a
// publisher does not wait for the write, and what was acknowledged but not
// yet written is lost if the process is killed. The Writer still writes
// an async stream's records in order with everyone else's, but never
// fsyncs them one by one: as nats-server (stream.go: an async persist
// mode sets the file store's SyncAlways false), sync_always does not
// apply to an async stream, whose blocks the interval's sync rounds
// make durable (store.FileStoreConfig.NoSyncAlways).
const persistAsync PersistMode = "async"

// PersistMode is a stream's persist_mode: "" (nats-server's "default",
// echoed absent as its omitempty does) or "async".
type PersistMode string

// UnmarshalJSON takes what nats-server's decoder takes ("default", "",
// "async") and refuses the rest with its words, so a bad value is an
// invalid-JSON error (10025) as there.
func (p *PersistMode) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"default"`, `""`:
		*p = ""
	case `"async"`:
		*p = persistAsync
	default:
		return fmt.Errorf("can not unmarshal %q", b)
	}
	return nil
}

// persistRules checks persist_mode after storage defaults are set.
func persistRules(cfg *StreamConfig) *APIError {
	if cfg.PersistMode != persistAsync {
		return nil
	}
	bad := func(msg string) *APIError { return newErr(errStreamConfig, "err", msg) }
	switch {
	case cfg.Storage != "file":
		return bad("async persist mode is only supported on file storage")
	case cfg.AllowAtomic:
		return bad("async persist mode is not supported with atomic batch publish")
	}
	return nil
}

// persistUpdateRules refuses changing persist_mode by an update.
func persistUpdateRules(old StreamConfig, cfg *StreamConfig) *APIError {
	if old.PersistMode != cfg.PersistMode {
		return newErr(errStreamConfig, "err", "stream configuration update can not change persist mode")
	}
	return nil
}

// asyncAck reports whether st acknowledges publishes before their write.
func (st *stream) asyncAck() bool {
	return st.cfg.PersistMode == persistAsync
}

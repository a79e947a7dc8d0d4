package jetstream

// Concurrency: pure validation; the tables are built once at init and only
// read afterwards; any goroutine, no locks.

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Unknown is an error: a config field evnats does not implement is refused,
// never stored and ignored, or a client believes (say) a mirror is copying
// data. json.Unmarshal drops keys it has no field for without a word, so
// the raw keys of each config are checked against our own config types:
// a field those types lack is refused unless its value is nats-server's
// default (clients send defaults such as "consumer_limits":{} always).

// apiLevel is the JetStream API level whose features evnats really has.
// Level 1 (nats-server 2.11) is per-message TTLs, delete markers, consumer
// pause and priority groups: all here. Level 2 (2.12) adds counters,
// message schedules, atomic batch publish and async persist: all here
// (counter.go, schedule.go, batch.go, persist.go). Level 4 (2.14) adds
// fast batch publish (here, fastbatch.go) and the flow_control ack policy
// (not here), so the level is 2: clients (nats.go, natscli) gate features
// on this number, and a higher one would promise what is not there.
const apiLevel = 2

// featureLevel is the API level that introduced a field evnats lacks, for
// fields newer than level 0; a client asking for one is told its server's
// level is too low (err_code 10185) rather than that its config is wrong.
var featureLevel = map[string]int{}

// defaultValues are non-zero JSON values that mean the default.
var defaultValues = map[string]string{}

var (
	streamFields   = jsonFields(reflect.TypeFor[StreamConfig]())
	consumerFields = jsonFields(reflect.TypeFor[ConsumerConfig]())
)

// jsonFields lists the JSON keys of a struct's exported fields.
func jsonFields(t reflect.Type) map[string]bool {
	keys := make(map[string]bool)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}

// unsupportedField returns the first (by name) key of a JSON object that
// is not in known and whose value is not a default, or "".
func unsupportedField(obj []byte, known map[string]bool) string {
	var raw map[string]json.RawMessage
	if json.Unmarshal(obj, &raw) != nil {
		return "" // the typed decode reports malformed JSON
	}
	var bad []string
	for k, v := range raw {
		if !known[k] && !isDefaultJSON(k, v) {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return ""
	}
	sort.Strings(bad)
	return bad[0]
}

// isDefaultJSON reports whether v is a zero value (null, false, 0, "",
// [], or an object of zero values) or the key's named default.
func isDefaultJSON(key string, v json.RawMessage) bool {
	if d, ok := defaultValues[key]; ok && string(bytes.TrimSpace(v)) == d {
		return true
	}
	var x any
	if json.Unmarshal(v, &x) != nil {
		return false
	}
	return isZero(x)
}

func isZero(x any) bool {
	switch x := x.(type) {
	case nil:
		return true
	case bool:
		return !x
	case float64:
		return x == 0
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		for _, v := range x {
			if !isZero(v) {
				return false
			}
		}
		return true
	}
	return false
}

// errNoPedantic refuses a request's "pedantic": true: evnats adjusts
// configs (defaults, sealing) as nats-server does outside pedantic mode and
// has no mode that refuses instead.
func errNoPedantic() *APIError { return newErr(errPedantic, "err", "not supported by this server") }

// refuseStreamField is the error for a stream config field evnats lacks.
func refuseStreamField(key string) *APIError {
	if key == "pedantic" { // the create request's flag, beside the config's fields
		return errNoPedantic()
	}
	if e := levelTooLow(key); e != nil {
		return e
	}
	return newErr(errStreamConfig, "err", "stream configuration field "+strconv.Quote(key)+" is not supported by this server")
}

// refuseConsumerField is the error for a consumer config field evnats lacks.
func refuseConsumerField(key string, push bool) *APIError {
	if e := levelTooLow(key); e != nil {
		return e
	}
	if key == "rate_limit_bps" && !push {
		return newErr(errPullRateLimit)
	}
	return newErr(errConsumerPolicy, "err", "consumer configuration field "+strconv.Quote(key)+" is not supported by this server")
}

func levelTooLow(key string) *APIError {
	l, ok := featureLevel[key]
	if !ok || l <= apiLevel {
		return nil
	}
	return newErr(errRequiredLevel, "field", key, "level", strconv.Itoa(l), "have", strconv.Itoa(apiLevel))
}

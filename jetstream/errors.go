// Package jetstream implements JetStream streams on top of jetstream/store:
// the $JS.API request handlers and the stream state machines, run by one
// Manager goroutine. It knows nothing of connections: the server gives it a
// Host to subscribe and publish through.
package jetstream

// Concurrency: pure validation and values; any goroutine, no locks.

import (
	"fmt"
	"strings"
)

// APIError is the error object of every JetStream API response; codes and
// texts are the ones nats-server sends, which clients branch on.
type APIError struct {
	Code        int    `json:"code"`
	ErrCode     uint16 `json:"err_code,omitempty"`
	Description string `json:"description,omitempty"`
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (%d)", e.Description, e.ErrCode) }

// errDef is one row of the error table; {placeholders} are filled by newErr.
type errDef struct {
	code    int
	errCode uint16
	desc    string
}

// The error table: every API error evnats sends comes from here.
var (
	errBadRequest        = errDef{400, 10003, "bad request"}
	errNoPeers           = errDef{400, 10005, "{err}"}
	errPushMaxWaiting    = errDef{400, 10080, "consumer in push mode can not set max waiting"}
	errPullRateLimit     = errDef{400, 10086, "consumer in pull mode can not have rate limit set"}
	errHBRequiresPush    = errDef{400, 10088, "consumer idle heartbeat requires a push based consumer"}
	errFCRequiresPush    = errDef{400, 10089, "consumer flow control requires a push based consumer"}
	errStreamUpdate      = errDef{500, 10069, "{err}"}
	errMaxAckPendingOver = errDef{400, 10121, "consumer max ack pending exceeds system limit of {limit}"}
	errInactiveOver      = errDef{400, 10153, "consumer inactive threshold exceeds system limit of {limit}"}
	errConsumerStore     = errDef{500, 10104, "error creating store for consumer: {err}"}
	errFCNeedsHeartbeat  = errDef{400, 10108, "consumer with flow control also needs heartbeats"}
	errPedantic          = errDef{400, 10157, "pedantic mode: {err}"}
	errSealed            = errDef{400, 10109, "invalid operation on sealed stream"}
	errConsumerReplicas  = errDef{400, 10126, "consumer config replica count exceeds parent stream"}
	errRequiredLevel     = errDef{412, 10185, "JetStream minimum api level required: {field} needs api level {level}, this server has {have}"}
	errConsumerCreate    = errDef{500, 10012, "{err}"}
	errConsumerNameInUse = errDef{400, 10013, "consumer name already in use"}
	errConsumerNotFound  = errDef{404, 10014, "consumer not found"}
	errDurableNotInSubj  = errDef{400, 10016, "consumer expected to be durable but no durable name set in subject"}
	errDurableMismatch   = errDef{400, 10017, "consumer name in subject does not match durable name in request"}
	errDurableNotSet     = errDef{400, 10018, "consumer expected to be durable but a durable name was not set"}
	errEphemeralDurable  = errDef{400, 10020, "consumer expected to be ephemeral but a durable name was set in request"}
	errMaxConsumers      = errDef{400, 10026, "maximum consumers limit reached"}
	errConsumerNameLong  = errDef{400, 10102, "consumer name is too long, maximum allowed is {max}"}
	errBadDurableName    = errDef{400, 10103, "durable name can not contain '.', '*', '>'"}
	errConsumerDescLong  = errDef{400, 10107, "consumer description is too long, maximum allowed is {max}"}
	errConsumerMetaLen   = errDef{400, 10135, "consumer metadata exceeds maximum size of {limit}"}
	errConsumerNamePath  = errDef{400, 10127, "Consumer name can not contain path separators"}
	errDurableNameEqual  = errDef{400, 10132, "Consumer Durable and Name have to be equal if both are provided"}
	errNegativeReplicas  = errDef{400, 10133, "replicas count cannot be negative"}
	errAckWaitNegative   = errDef{400, 10183, "consumer ack wait needs to be positive"}
	errBackOffNegative   = errDef{400, 10184, "consumer backoff needs to be positive"}
	errInternal          = errDef{500, 10051, "internal error"}
	errWQAckPolicy       = errDef{400, 10084, "consumer in pull mode requires explicit ack policy on workqueue stream"}
	errConsumerPolicy    = errDef{400, 10094, "{err}"}
	errWQNotUnique       = errDef{400, 10100, "filtered consumer not unique on workqueue stream"}
	errWQDeliverAll      = errDef{400, 10101, "consumer must be deliver all on workqueue stream"}
	errDeliverSubject    = errDef{400, 10112, "invalid push consumer deliver subject"}
	errFilterMismatch    = errDef{400, 10131, "Consumer create request did not match filtered subject from create subject"}
	errConsumerExists    = errDef{400, 10148, "consumer already exists"}
	errConsumerNotExist  = errDef{400, 10149, "consumer does not exist"}
	errInsufficient      = errDef{503, 10023, "insufficient resources"}
	errInvalidJSON       = errDef{400, 10025, "invalid JSON: {err}"}
	errMaxStreams        = errDef{400, 10027, "maximum number of streams reached"}
	errNoMessage         = errDef{404, 10037, "no message found"}
	errStreamConfig      = errDef{500, 10052, "{err}"}
	errMsgTooBig         = errDef{400, 10054, "message size exceeds maximum allowed"}
	errStreamMismatch    = errDef{400, 10056, "stream name in subject does not match request"}
	errMsgDelete         = errDef{500, 10057, "{err}"}
	errStreamNameInUse   = errDef{400, 10058, "stream name already in use with a different configuration"}
	errStreamNotFound    = errDef{404, 10059, "stream not found"}
	errExpectedStream    = errDef{400, 10060, "expected stream does not match"}
	errSubjectOverlap    = errDef{400, 10065, "subjects overlap with an existing stream"}
	errWrongLastMsgID    = errDef{400, 10070, "wrong last msg ID: {id}"}
	errWrongLastSeq      = errDef{400, 10071, "wrong last sequence: {seq}"}
	errReplicas          = errDef{500, 10074, "replicas > 1 not supported in non-clustered mode"}
	errNotEnabled        = errDef{503, 10076, "JetStream not enabled"}
	errStoreFailed       = errDef{503, 10077, "{err}"}
	errStreamPurge       = errDef{500, 10110, "{err}"}
	errRollup            = errDef{500, 10111, "{err}"}
	errStreamNamePath    = errDef{400, 10128, "Stream name can not contain path separators"}
	errMaxMsgsPerSubject = errDef{503, 10077, "maximum messages per subject exceeded"}
	errMsgTTLInvalid     = errDef{400, 10165, "invalid per-message TTL"}
	errMsgTTLDisabled    = errDef{400, 10166, "per-message TTL is disabled"}
	errTransformSource   = errDef{400, 10155, "stream transform source: {err}"}
	errTransformDest     = errDef{400, 10156, "stream transform: {err}"}
	errStreamGeneral     = errDef{500, 10051, "{err}"} // a consumer delete that could not remove its files

	// Priority groups.
	errPolicyWithoutGroup     = errDef{400, 10159, "Setting PriorityPolicy requires at least one PriorityGroup to be set"}
	errNoSuchGroup            = errDef{400, 10160, "Provided priority group does not exist for this consumer"}
	errEmptyGroupName         = errDef{400, 10161, "Group name cannot be an empty string"}
	errInvalidGroupName       = errDef{400, 10162, "Valid priority group name must match A-Z, a-z, 0-9, -_/=)+ and may not exceed 16 characters"}
	errPushWithPriority       = errDef{400, 10178, "priority groups can not be used with push consumers"}
	errGroupsWithoutPolicy    = errDef{400, 10196, "consumer can not have priority groups when policy is none"}
	errPinnedTTLWithoutPolicy = errDef{400, 10197, "PinnedTTL cannot be set when PriorityPolicy is none"}
	// Atomic batch publish.
	errAtomicDisabled   = errDef{400, 10174, "atomic publish is disabled"}
	errAtomicMissingSeq = errDef{400, 10175, "atomic publish sequence is missing"}
	errAtomicIncomplete = errDef{400, 10176, "atomic publish batch is incomplete"}
	errAtomicHeader     = errDef{400, 10177, "atomic publish unsupported header used: {header}"}
	errAtomicBatchID    = errDef{400, 10179, "atomic publish batch ID is invalid"}
	errAtomicTooLarge   = errDef{400, 10199, "atomic publish batch is too large: {size}"}
	errAtomicCommit     = errDef{400, 10200, "atomic publish batch commit is invalid"}
	errAtomicDuplicate  = errDef{400, 10201, "atomic publish batch contains duplicate message id"}
	errAtomicInflight   = errDef{429, 10210, "atomic publish too many inflight"}
	// Fast batch publish.
	errFastDisabled = errDef{400, 10205, "batch publish is disabled"}
	errFastPattern  = errDef{400, 10206, "batch publish pattern is invalid"}
	errFastBatchID  = errDef{400, 10207, "batch publish ID is invalid"}
	errFastUnknown  = errDef{400, 10208, "batch publish ID unknown"}
	errFastInflight = errDef{429, 10211, "batch publish too many inflight"}
	// Nothing publishes to a mirror.
	errMirrorAtomic        = errDef{400, 10198, "stream mirrors can not also use atomic publishing"}
	errMirrorBatched       = errDef{400, 10209, "stream mirrors can not also use batch publishing"}
	errWrongLastSeqInBatch = errDef{400, 10164, "wrong last sequence"}
)

// newErr fills the definition's placeholders from name/value pairs.
func newErr(d errDef, kv ...string) *APIError {
	desc := d.desc
	for i := 0; i+1 < len(kv); i += 2 {
		desc = strings.ReplaceAll(desc, "{"+kv[i]+"}", kv[i+1])
	}
	return &APIError{Code: d.code, ErrCode: d.errCode, Description: desc}
}

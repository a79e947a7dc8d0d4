package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"encoding/json"
	"strconv"
	"time"
)

// API response types: "type" values and JSON field names as nats-server's.
const (
	typeInfo       = "io.nats.jetstream.api.v1.account_info_response"
	typeCreate     = "io.nats.jetstream.api.v1.stream_create_response"
	typeUpdate     = "io.nats.jetstream.api.v1.stream_update_response"
	typeStreamInfo = "io.nats.jetstream.api.v1.stream_info_response"
	typeDelete     = "io.nats.jetstream.api.v1.stream_delete_response"
	typeNames      = "io.nats.jetstream.api.v1.stream_names_response"
	typeList       = "io.nats.jetstream.api.v1.stream_list_response"
	typePurge      = "io.nats.jetstream.api.v1.stream_purge_response"
	typeMsgGet     = "io.nats.jetstream.api.v1.stream_msg_get_response"
	typeMsgDelete  = "io.nats.jetstream.api.v1.stream_msg_delete_response"
)

// StreamConfig is a stream's configuration. Durations are nanoseconds.
type StreamConfig struct {
	Name              string            `json:"name"`
	Description       string            `json:"description,omitempty"`
	Subjects          []string          `json:"subjects,omitempty"`
	Retention         string            `json:"retention"`
	MaxConsumers      int               `json:"max_consumers"`
	MaxMsgs           int64             `json:"max_msgs"`
	MaxBytes          int64             `json:"max_bytes"`
	MaxAge            time.Duration     `json:"max_age"`
	MaxMsgsPerSubject int64             `json:"max_msgs_per_subject"`
	MaxMsgSize        int32             `json:"max_msg_size"`
	Discard           string            `json:"discard"`
	Storage           string            `json:"storage"`
	Replicas          int               `json:"num_replicas"`
	NoAck             bool              `json:"no_ack,omitempty"`
	Duplicates        time.Duration     `json:"duplicate_window,omitempty"`
	Sealed            bool              `json:"sealed"`
	DenyDelete        bool              `json:"deny_delete"`
	DenyPurge         bool              `json:"deny_purge"`
	AllowRollup       bool              `json:"allow_rollup_hdrs"`
	AllowDirect       bool              `json:"allow_direct"`
	MirrorDirect      bool              `json:"mirror_direct"`
	DiscardNewPer     bool              `json:"discard_new_per_subject,omitempty"`
	Metadata          map[string]string `json:"metadata,omitempty"`
	Compression       string            `json:"compression,omitempty"`
	FirstSeq          uint64            `json:"first_seq,omitempty"`
	Placement         *Placement        `json:"placement,omitempty"`
	Mirror            *StreamSource     `json:"mirror,omitempty"`
	Sources           []*StreamSource   `json:"sources,omitempty"`
	ConsumerLimits    ConsumerLimits    `json:"consumer_limits"`
	// Per-message TTLs and subject delete markers (ttl.go).
	AllowMsgTTL            bool          `json:"allow_msg_ttl"`
	SubjectDeleteMarkerTTL time.Duration `json:"subject_delete_marker_ttl,omitempty"`
	AllowAtomic            bool          `json:"allow_atomic,omitempty"`
	AllowBatched           bool          `json:"allow_batched,omitempty"`       // fast batch publish (fastbatch.go)
	AllowMsgCounter        bool          `json:"allow_msg_counter,omitempty"`   // counter.go
	AllowMsgSchedules      bool          `json:"allow_msg_schedules,omitempty"` // schedule.go
	RePublish              *RePublish    `json:"republish,omitempty"`           // republish.go
	// stream_transform.go
	SubjectTransform *SubjectTransformConfig `json:"subject_transform,omitempty"`
	PersistMode      PersistMode             `json:"persist_mode,omitempty"` // persist.go
}

// ConsumerLimits are a stream's defaults and ceilings for its consumers'
// inactive_threshold and max_ack_pending; zero: none.
type ConsumerLimits struct {
	InactiveThreshold time.Duration `json:"inactive_threshold,omitempty"`
	MaxAckPending     int           `json:"max_ack_pending,omitempty"`
}

// Placement asks for a cluster and server tags. A single server is every
// placement that names no other cluster; tags are echoed, not matched.
type Placement struct {
	Cluster   string   `json:"cluster,omitempty"`
	Tags      []string `json:"tags,omitempty"`
	Preferred string   `json:"preferred,omitempty"`
}

// StreamState is the state part of StreamInfo.
type StreamState struct {
	Msgs        uint64    `json:"messages"`
	Bytes       uint64    `json:"bytes"`
	FirstSeq    uint64    `json:"first_seq"`
	FirstTime   time.Time `json:"first_ts"`
	LastSeq     uint64    `json:"last_seq"`
	LastTime    time.Time `json:"last_ts"`
	NumDeleted  int       `json:"num_deleted,omitempty"`
	NumSubjects int       `json:"num_subjects,omitempty"`
	Consumers   int       `json:"consumer_count"`
}

// StreamInfo describes a stream.
type StreamInfo struct {
	Config  StreamConfig        `json:"config"`
	Created time.Time           `json:"created"`
	State   StreamState         `json:"state"`
	Mirror  *StreamSourceInfo   `json:"mirror,omitempty"`
	Sources []*StreamSourceInfo `json:"sources,omitempty"`
	Cluster *ClusterInfo        `json:"cluster,omitempty"`
	TS      time.Time           `json:"ts"`
}

// ClusterInfo names a stream's leader: on a single server, the server.
type ClusterInfo struct {
	Leader string `json:"leader,omitempty"`
}

type apiResponse struct {
	Type  string    `json:"type"`
	Error *APIError `json:"error,omitempty"`
}

type streamInfoResponse struct {
	apiResponse
	*StreamInfo
	DidCreate bool `json:"did_create,omitempty"`
}

// streamInfoPaged is STREAM.INFO's answer, which pages the subject and
// deleted-sequence details; evnats sends neither, so the page is empty.
type streamInfoPaged struct {
	apiResponse
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	*StreamInfo
}

// accountInfoResponse is shaped as nats-server's for an account whose
// limits are in the default tier, as the one account here is: usage and
// limits at the top, no "tiers" object.
type accountInfoResponse struct {
	apiResponse
	Memory         uint64        `json:"memory"`
	Storage        uint64        `json:"storage"`
	ReservedMemory uint64        `json:"reserved_memory"`
	ReservedStore  uint64        `json:"reserved_storage"`
	Streams        int           `json:"streams"`
	Consumers      int           `json:"consumers"`
	Limits         accountLimits `json:"limits"`
	Domain         string        `json:"domain,omitempty"`
	API            apiStats      `json:"api"`
}

type accountLimits struct {
	MaxMemory            int64 `json:"max_memory"`
	MaxStorage           int64 `json:"max_storage"`
	MaxStreams           int   `json:"max_streams"`
	MaxConsumers         int   `json:"max_consumers"`
	MaxAckPending        int   `json:"max_ack_pending"`
	MemoryMaxStreamBytes int64 `json:"memory_max_stream_bytes"`
	StoreMaxStreamBytes  int64 `json:"storage_max_stream_bytes"`
	MaxBytesRequired     bool  `json:"max_bytes_required"`
}

type apiStats struct {
	Level  int    `json:"level"`
	Total  uint64 `json:"total"`
	Errors uint64 `json:"errors"`
}

type pagedRequest struct {
	Offset  int    `json:"offset"`
	Subject string `json:"subject,omitempty"`
}

type namesResponse struct {
	apiResponse
	Total   int      `json:"total"`
	Offset  int      `json:"offset"`
	Limit   int      `json:"limit"`
	Streams []string `json:"streams"`
}

type listResponse struct {
	apiResponse
	Total   int           `json:"total"`
	Offset  int           `json:"offset"`
	Limit   int           `json:"limit"`
	Streams []*StreamInfo `json:"streams"`
	Missing []string      `json:"missing,omitempty"`
}

type successResponse struct {
	apiResponse
	Success bool `json:"success"`
}

type purgeRequest struct {
	Subject string `json:"filter,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Keep    uint64 `json:"keep,omitempty"`
}

type purgeResponse struct {
	apiResponse
	Success bool   `json:"success"`
	Purged  uint64 `json:"purged"`
}

type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type storedMsg struct {
	Subject string    `json:"subject"`
	Seq     uint64    `json:"seq"`
	Header  []byte    `json:"hdrs,omitempty"`
	Data    []byte    `json:"data,omitempty"`
	Time    time.Time `json:"time"`
}

type msgGetResponse struct {
	apiResponse
	Message *storedMsg `json:"message,omitempty"`
}

type msgDeleteRequest struct {
	Seq     uint64 `json:"seq"`
	NoErase bool   `json:"no_erase,omitempty"`
}

// PubAck acknowledges a stored message.
type PubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate,omitempty"`
	Domain    string    `json:"domain,omitempty"`
	Batch     string    `json:"batch,omitempty"` // an atomic batch's id, on its commit's ack
	Count     uint64    `json:"count,omitempty"` // the messages the batch stored
	Value     string    `json:"val,omitempty"`   // a counter's new total (counter.go)
	Error     *APIError `json:"error,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are marshalled
	}
	return b
}

// pubAckJSON is mustJSON(ack) for the ack of every plain publish
// ({"stream":..,"seq":..[,"domain":..]}) without encoding/json's
// reflection: one allocation. Anything else, or a name json.Marshal would
// escape, goes through mustJSON, so the bytes are always json.Marshal's.
func pubAckJSON(ack *PubAck) []byte {
	if ack.Error != nil || ack.Duplicate || ack.Batch != "" || ack.Count != 0 || ack.Value != "" ||
		!plainJSON(ack.Stream) || !plainJSON(ack.Domain) {
		return mustJSON(ack)
	}
	b := make([]byte, 0, 56+len(ack.Stream)+len(ack.Domain)) // the fixed text and 20 digits
	b = append(append(append(b, `{"stream":"`...), ack.Stream...), `","seq":`...)
	b = strconv.AppendUint(b, ack.Seq, 10)
	if ack.Domain != "" {
		b = append(append(append(b, `,"domain":"`...), ack.Domain...), '"')
	}
	return append(b, '}')
}

// plainJSON reports whether json.Marshal writes s between quotes as is.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

package jetstream_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	server "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// A field's verdict: honoured (the create succeeds, the info echoes the
// value and the behaviour is implemented and tested elsewhere) or refused
// (the create fails with an API error). Implementing a feature flips its
// row; a field nats-server adds fails the walk until it gets a row.
const (
	honoured = true
	refused  = false
)

type streamField struct {
	verdict bool
	set     func(c *server.StreamConfig) // nil: a generic non-default value
}

type consumerField struct {
	verdict bool
	set     func(c *server.ConsumerConfig)
}

var streamFields = map[string]streamField{
	"Name":         {honoured, func(c *server.StreamConfig) {}}, // the test names every stream
	"Description":  {honoured, nil},
	"Subjects":     {honoured, func(c *server.StreamConfig) { c.Subjects = []string{"f.a", "f.b"} }},
	"Retention":    {honoured, func(c *server.StreamConfig) { c.Retention = server.InterestPolicy }},
	"MaxConsumers": {honoured, nil},
	"MaxMsgs":      {honoured, nil},
	"MaxBytes":     {honoured, nil},
	"MaxAge":       {honoured, nil},
	"MaxMsgsPer":   {honoured, nil},
	"MaxMsgSize":   {honoured, nil},
	"Discard":      {honoured, func(c *server.StreamConfig) { c.Discard = server.DiscardNew }},
	"Storage":      {honoured, func(c *server.StreamConfig) { c.Storage = server.MemoryStorage }},
	"Replicas":     {refused, func(c *server.StreamConfig) { c.Replicas = 3 }}, // one server: R1 only
	"NoAck":        {honoured, nil},
	"Duplicates":   {honoured, nil},
	"Placement":    {honoured, func(c *server.StreamConfig) { c.Placement = &server.Placement{Tags: []string{"ssd"}} }},
	"Mirror":       {honoured, func(c *server.StreamConfig) { c.Mirror = &server.StreamSource{Name: "ORIGIN"}; c.Subjects = nil }},
	"Sources":      {honoured, func(c *server.StreamConfig) { c.Sources = []*server.StreamSource{{Name: "ORIGIN"}} }},
	"Compression":  {honoured, func(c *server.StreamConfig) { c.Compression = server.S2Compression }},
	"FirstSeq":     {honoured, nil},
	"SubjectTransform": {honoured, func(c *server.StreamConfig) {
		c.SubjectTransform = &server.SubjectTransformConfig{Source: "f.>", Destination: "g.>"}
	}},
	"RePublish":              {honoured, func(c *server.StreamConfig) { c.RePublish = &server.RePublish{Source: ">", Destination: "rp.>"} }},
	"AllowDirect":            {honoured, nil},
	"MirrorDirect":           {refused, nil},
	"DiscardNewPer":          {honoured, func(c *server.StreamConfig) { c.DiscardNewPer, c.Discard, c.MaxMsgsPer = true, server.DiscardNew, 1 }},
	"Sealed":                 {refused, nil}, // on create, as nats-server; an update seals (TestSealedStream)
	"DenyDelete":             {honoured, nil},
	"DenyPurge":              {honoured, nil},
	"AllowRollup":            {honoured, nil},
	"ConsumerLimits":         {honoured, func(c *server.StreamConfig) { c.ConsumerLimits.MaxAckPending = 10 }},
	"AllowMsgTTL":            {honoured, nil},
	"SubjectDeleteMarkerTTL": {honoured, func(c *server.StreamConfig) { c.AllowMsgTTL, c.SubjectDeleteMarkerTTL = true, time.Second }},
	"AllowMsgCounter":        {honoured, nil},
	"AllowAtomicPublish":     {honoured, nil},
	"AllowMsgSchedules":      {honoured, nil},
	"PersistMode":            {honoured, func(c *server.StreamConfig) { c.PersistMode = server.AsyncPersistMode }},
	"AllowBatchPublish":      {honoured, nil},
	"Metadata":               {honoured, func(c *server.StreamConfig) { c.Metadata = map[string]string{"owner": "ops"} }},
}

var consumerFields = map[string]consumerField{
	"Durable":       {honoured, func(c *server.ConsumerConfig) {}}, // the test names every consumer
	"Name":          {honoured, func(c *server.ConsumerConfig) {}},
	"Description":   {honoured, nil},
	"DeliverPolicy": {honoured, func(c *server.ConsumerConfig) { c.DeliverPolicy = server.DeliverLast }},
	"OptStartSeq":   {honoured, func(c *server.ConsumerConfig) { c.DeliverPolicy, c.OptStartSeq = server.DeliverByStartSequence, 7 }},
	"OptStartTime": {honoured, func(c *server.ConsumerConfig) {
		t := time.Unix(1_700_000_000, 0).UTC()
		c.DeliverPolicy, c.OptStartTime = server.DeliverByStartTime, &t
	}},
	"AckPolicy":  {honoured, func(c *server.ConsumerConfig) { c.AckPolicy = server.AckAll }},
	"AckWait":    {honoured, nil},
	"MaxDeliver": {honoured, nil},
	"BackOff": {honoured, func(c *server.ConsumerConfig) {
		c.BackOff, c.MaxDeliver = []time.Duration{time.Second, 2 * time.Second}, 5
	}},
	"FilterSubject":      {honoured, func(c *server.ConsumerConfig) { c.FilterSubject = "f.a" }},
	"FilterSubjects":     {honoured, func(c *server.ConsumerConfig) { c.FilterSubjects = []string{"f.a", "f.b"} }},
	"ReplayPolicy":       {refused, func(c *server.ConsumerConfig) { c.ReplayPolicy = server.ReplayOriginal }},
	"RateLimit":          {refused, nil},
	"SampleFrequency":    {refused, func(c *server.ConsumerConfig) { c.SampleFrequency = "50%" }},
	"MaxWaiting":         {honoured, nil},
	"MaxAckPending":      {honoured, nil},
	"FlowControl":        {honoured, func(c *server.ConsumerConfig) { pushed(c); c.FlowControl, c.Heartbeat = true, time.Second }},
	"HeadersOnly":        {honoured, nil},
	"MaxRequestBatch":    {honoured, nil},
	"MaxRequestExpires":  {honoured, nil},
	"MaxRequestMaxBytes": {honoured, nil},
	"DeliverSubject":     {honoured, pushed},
	"DeliverGroup":       {honoured, func(c *server.ConsumerConfig) { pushed(c); c.DeliverGroup = "workers" }},
	"Heartbeat":          {honoured, func(c *server.ConsumerConfig) { pushed(c); c.Heartbeat = 2 * time.Second }},
	"InactiveThreshold":  {honoured, nil},
	"Replicas":           {refused, func(c *server.ConsumerConfig) { c.Replicas = 3 }},
	"MemoryStorage":      {honoured, nil},
	"Direct":             {refused, nil}, // durable: nats-server refuses too (10091); ephemeral direct is a mirror/source across domains: TestLeafJetStreamDomainHubJS
	"Sourcing":           {refused, nil},
	"Metadata":           {honoured, func(c *server.ConsumerConfig) { c.Metadata = map[string]string{"owner": "ops"} }},
	"PauseUntil": {honoured, func(c *server.ConsumerConfig) {
		t := time.Now().Add(time.Hour).UTC()
		c.PauseUntil = &t
	}},
	"PriorityGroups": {honoured, func(c *server.ConsumerConfig) {
		c.PriorityGroups, c.PriorityPolicy = []string{"jobs"}, server.PriorityOverflow
	}},
	"PriorityPolicy": {honoured, func(c *server.ConsumerConfig) {
		c.PriorityGroups, c.PriorityPolicy = []string{"jobs"}, server.PriorityPinnedClient
	}},
	"PinnedTTL": {honoured, func(c *server.ConsumerConfig) {
		c.PriorityGroups, c.PriorityPolicy, c.PinnedTTL = []string{"jobs"}, server.PriorityPinnedClient, 5*time.Second
	}},
}

// pushed makes c a push consumer, as the push-only fields need.
func pushed(c *server.ConsumerConfig) {
	c.DeliverSubject, c.MaxWaiting = "push.out", 0
}

// setGeneric gives a field a non-default value by its kind.
func setGeneric(t *testing.T, name string, v reflect.Value) {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		v.SetInt(int64(5 * time.Second))
	case v.Kind() == reflect.Bool:
		v.SetBool(true)
	case v.CanInt():
		v.SetInt(7)
	case v.CanUint():
		v.SetUint(7)
	case v.Kind() == reflect.String:
		v.SetString("set by the field walk")
	default:
		t.Fatalf("field %s (%s) needs a setter in the table", name, v.Type())
	}
}

// jsonKey is the JSON name of a struct field.
func jsonKey(f reflect.StructField) string {
	k, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return k
}

type createReply struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Config map[string]json.RawMessage `json:"config"`
}

// connectURL connects nats.go to url for the test's duration.
func connectURL(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// request sends a JetStream API request through nats.go and decodes it.
func request(t *testing.T, nc *nats.Conn, subject string, body any) createReply {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(subject, b, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r createReply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		t.Fatalf("%s: %v: %s", subject, err, msg.Data)
	}
	return r
}

// checkVerdict checks one create reply against the table's verdict.
func checkVerdict(t *testing.T, verdict bool, key string, sent []byte, r createReply) {
	t.Helper()
	if !verdict {
		if r.Error == nil || r.Error.Code == 0 || r.Error.ErrCode == 0 || r.Error.Description == "" {
			t.Fatalf("%s: want a refusal with code, err_code and description; got %+v", key, r)
		}
		return
	}
	if r.Error != nil {
		t.Fatalf("%s: want it honoured, got error %+v", key, *r.Error)
	}
	var want map[string]json.RawMessage
	if err := json.Unmarshal(sent, &want); err != nil {
		t.Fatal(err)
	}
	if !sameJSONValue(want[key], r.Config[key]) {
		t.Fatalf("%s: sent %s, info echoes %s", key, want[key], r.Config[key])
	}
}

func sameJSONValue(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestStreamConfigFieldWalk sets every field of nats-server's StreamConfig,
// one at a time, in a create request, and checks evnats honours or refuses
// it as the table says: never accepts it and drops it.
func TestStreamConfigFieldWalk(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, _ := connectJS(t, s)
	ref := connectURL(t, startReferenceJS(t))
	typ := reflect.TypeFor[server.StreamConfig]()
	seen := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		seen[f.Name] = true
		row, ok := streamFields[f.Name]
		if !ok {
			t.Errorf("nats-server's StreamConfig has %s (%q): add a row saying whether evnats honours it", f.Name, jsonKey(f))
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			name := "F" + f.Name
			cfg := server.StreamConfig{Name: name, Subjects: []string{strings.ToLower(name) + ".>"}, Storage: server.FileStorage}
			if row.set != nil {
				row.set(&cfg)
			} else {
				setGeneric(t, f.Name, reflect.ValueOf(&cfg).Elem().Field(i))
			}
			sent, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if row.verdict == honoured { // the value is one nats-server takes
				if r := request(t, ref, "$JS.API.STREAM.CREATE."+name, json.RawMessage(sent)); r.Error != nil {
					t.Fatalf("nats-server refuses the value: %+v", *r.Error)
				}
			}
			r := request(t, nc, "$JS.API.STREAM.CREATE."+name, json.RawMessage(sent))
			checkVerdict(t, row.verdict, jsonKey(f), sent, r)
			info := request(t, nc, "$JS.API.STREAM.INFO."+name, nil)
			if created := info.Error == nil; created != row.verdict {
				t.Fatalf("stream exists after the create: %v, want %v", created, row.verdict)
			}
		})
	}
	for name := range streamFields {
		if !seen[name] {
			t.Errorf("table row %s names no field of nats-server's StreamConfig", name)
		}
	}
}

// TestConsumerConfigFieldWalk does the same for ConsumerConfig.
func TestConsumerConfigFieldWalk(t *testing.T) {
	s := startJS(t, loop.Options{})
	nc, _ := connectJS(t, s)
	ref := connectURL(t, startReferenceJS(t))
	for _, conn := range []*nats.Conn{nc, ref} {
		if r := request(t, conn, "$JS.API.STREAM.CREATE.CF", server.StreamConfig{Name: "CF", Subjects: []string{"f.>"}, Storage: server.FileStorage}); r.Error != nil {
			t.Fatal(*r.Error)
		}
	}
	typ := reflect.TypeFor[server.ConsumerConfig]()
	seen := map[string]bool{}
	for i := 0; i < typ.NumField(); i++ {
		f := typ.Field(i)
		if !f.IsExported() {
			continue
		}
		seen[f.Name] = true
		row, ok := consumerFields[f.Name]
		if !ok {
			t.Errorf("nats-server's ConsumerConfig has %s (%q): add a row saying whether evnats honours it", f.Name, jsonKey(f))
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			name := "C" + f.Name
			cfg := server.ConsumerConfig{Durable: name, Name: name, AckPolicy: server.AckExplicit}
			if row.set != nil {
				row.set(&cfg)
			} else {
				setGeneric(t, f.Name, reflect.ValueOf(&cfg).Elem().Field(i))
			}
			sent, err := json.Marshal(cfg)
			if err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"stream_name": "CF", "config": json.RawMessage(sent), "action": "create"}
			subject := "$JS.API.CONSUMER.CREATE.CF." + name
			if cfg.FilterSubject != "" {
				subject += "." + cfg.FilterSubject
			}
			if row.verdict == honoured {
				if r := request(t, ref, subject, body); r.Error != nil {
					t.Fatalf("nats-server refuses the value: %+v", *r.Error)
				}
			}
			r := request(t, nc, subject, body)
			checkVerdict(t, row.verdict, jsonKey(f), sent, r)
			info := request(t, nc, "$JS.API.CONSUMER.INFO.CF."+name, nil)
			if created := info.Error == nil; created != row.verdict {
				t.Fatalf("consumer exists after the create: %v, want %v", created, row.verdict)
			}
		})
	}
	for name := range consumerFields {
		if !seen[name] {
			t.Errorf("table row %s names no field of nats-server's ConsumerConfig", name)
		}
	}
}

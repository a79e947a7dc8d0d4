package jetstream

// Concurrency: pure validation and values; any goroutine, no locks, except
// originRules, which reads the Manager's streams on its goroutine.

import (
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/evnats/evnats/router"
	subjtr "github.com/evnats/evnats/router/transform"
)

// Mirrors and sources: the config a client sends, the rules nats-server
// applies to it, and the Nats-Stream-Source header a sourced message
// carries. The copying itself is in mirror.go.

// StreamSource names an origin stream that a mirror or a source copies,
// and which of its messages: a stream on this server, or with External
// one in another domain or account (external.go). nats-server's
// "consumer" (a durable on the origin) is refused by sourceFields.
type StreamSource struct {
	Name              string                   `json:"name"`
	External          *ExternalStream          `json:"external,omitempty"`
	OptStartSeq       uint64                   `json:"opt_start_seq,omitempty"`
	OptStartTime      *time.Time               `json:"opt_start_time,omitempty"`
	FilterSubject     string                   `json:"filter_subject,omitempty"`
	SubjectTransforms []SubjectTransformConfig `json:"subject_transforms,omitempty"`
}

// StreamSourceInfo is a mirror's or source's state in stream info.
// Active is the time since the last message copied, -1 before any.
type StreamSourceInfo struct {
	Name              string                   `json:"name"`
	External          *ExternalStream          `json:"external,omitempty"`
	Lag               uint64                   `json:"lag"`
	Seq               uint64                   `json:"seq,omitempty"`
	Active            time.Duration            `json:"active"`
	Error             *APIError                `json:"error,omitempty"`
	FilterSubject     string                   `json:"filter_subject,omitempty"`
	SubjectTransforms []SubjectTransformConfig `json:"subject_transforms,omitempty"`
}

// hdrStreamSource marks a sourced message with where it came from:
// "<origin> <origin seq> <filters> <destinations> <original subject>".
const hdrStreamSource = "Nats-Stream-Source"

// Errors of mirror and source configs, as nats-server's.
var (
	errMirrorFirstSeq     = errDef{400, 10143, "stream mirrors can not have first sequence configured"}
	errMirrorSubjects     = errDef{400, 10034, "stream mirrors can not contain subjects"}
	errMirrorSources      = errDef{400, 10031, "stream mirrors can not also contain other sources"}
	errMirrorStartBoth    = errDef{400, 10032, "stream mirrors can not have both start seq and start time configured"}
	errMirrorFilterAndTr  = errDef{400, 10150, "mirror with multiple subject transforms cannot also have a single subject filter"}
	errMirrorTrSource     = errDef{400, 10151, "mirror transform source: {err}"}
	errMirrorTrDest       = errDef{400, 10154, "mirror transform: {err}"}
	errMirrorTrOverlap    = errDef{400, 10152, "mirror subject filters can not overlap"}
	errMirrorName         = errDef{400, 10142, "mirrored stream name is invalid"}
	errMirrorMsgSize      = errDef{400, 10030, "stream mirror must have max message size >= source"}
	errMirrorNotUpdatable = errDef{400, 10055, "stream mirror configuration can not be updated"}
	errSourceName         = errDef{400, 10141, "sourced stream name is invalid"}
	errSourceDuplicate    = errDef{400, 10140, "duplicate source configuration detected"}
	errSourceFilterAndTr  = errDef{400, 10144, "source with multiple subject transforms cannot also have a single subject filter"}
	errSourceTrSource     = errDef{400, 10145, "source transform source: {err}"}
	errSourceTrDest       = errDef{400, 10146, "source transform: {err}"}
	errSourceTrOverlap    = errDef{400, 10147, "source filters can not overlap"}
	errSourceMsgSize      = errDef{400, 10046, "stream source must have max message size >= target"}
	errStreamCreate       = errDef{500, 10049, "{err}"}
	errMirrorSetup        = errDef{500, 10029, "{err}"}
	errExtAPIOverlap      = errDef{400, 10021, "stream external api prefix {prefix} must not overlap with {subject}"}
	errExtDeliverOverlap  = errDef{400, 10022, "stream external delivery prefix {prefix} overlaps with stream subject {subject}"}
	errExtDeliverSubj     = errDef{400, 10024, "stream external delivery prefix {prefix} must not contain wildcards"}
	errSourceSetup        = errDef{500, 10045, "{err}"}
)

// copies reports whether the stream is a mirror or has sources.
func (cfg *StreamConfig) copies() bool { return cfg.Mirror != nil || len(cfg.Sources) > 0 }

var sourceFields = jsonFields(reflect.TypeFor[StreamSource]())

// unsupportedSourceField finds a key of the request's mirror or sources
// that evnats lacks ("external", "consumer"), as "mirror.external", for
// the refusal: json.Unmarshal would drop it without a word.
func unsupportedSourceField(body []byte) string {
	var raw struct {
		Mirror  json.RawMessage   `json:"mirror"`
		Sources []json.RawMessage `json:"sources"`
	}
	if json.Unmarshal(body, &raw) != nil {
		return ""
	}
	if len(raw.Mirror) > 0 {
		if k := unsupportedField(raw.Mirror, sourceFields); k != "" {
			return "mirror." + k
		}
	}
	for _, s := range raw.Sources {
		if k := unsupportedField(s, sourceFields); k != "" {
			return "sources." + k
		}
	}
	return ""
}

// copyRules checks a mirror's or sources' config on its own, in
// nats-server's order; normalize calls it before subjects get defaults.
func copyRules(cfg *StreamConfig) *APIError {
	if mr := cfg.Mirror; mr != nil {
		switch {
		case cfg.FirstSeq > 0:
			return newErr(errMirrorFirstSeq)
		case len(cfg.Subjects) > 0:
			return newErr(errMirrorSubjects)
		case len(cfg.Sources) > 0:
			return newErr(errMirrorSources)
		case cfg.AllowMsgCounter:
			return newErr(errMirrorCounters)
		case cfg.AllowAtomic:
			return newErr(errMirrorAtomic)
		case cfg.AllowBatched:
			return newErr(errMirrorBatched)
		case mr.FilterSubject != "" && len(mr.SubjectTransforms) > 0:
			return newErr(errMirrorFilterAndTr)
		case cfg.SubjectDeleteMarkerTTL > 0: // a marker would take a sequence the origin's message needs
			return newErr(errStreamConfig, "err", "subject delete markers forbidden on mirrors")
		case mr.OptStartSeq > 0 && mr.OptStartTime != nil:
			return newErr(errMirrorStartBoth)
		case !validName(mr.Name) || len(mr.Name) > maxNameLen:
			return newErr(errMirrorName)
		}
		if e := transformRules(mr, errMirrorTrSource, errMirrorTrDest, errMirrorTrOverlap); e != nil {
			return e
		}
		if mr.FilterSubject != "" && !router.ValidSubject(mr.FilterSubject) {
			return newErr(errStreamCreate, "err", "subject filter '"+mr.FilterSubject+"' for the mirror: invalid subject")
		}
		if e := externalRules(mr.External, cfg.Subjects); e != nil {
			return e
		}
	}
	seen := make(map[string]bool)
	for _, src := range cfg.Sources {
		if src == nil || !validName(src.Name) || len(src.Name) > maxNameLen {
			return newErr(errSourceName)
		}
		if in := src.iname(); seen[in] {
			return newErr(errSourceDuplicate)
		} else {
			seen[in] = true
		}
		if src.FilterSubject != "" && len(src.SubjectTransforms) > 0 {
			return newErr(errSourceFilterAndTr)
		}
		if e := transformRules(src, errSourceTrSource, errSourceTrDest, errSourceTrOverlap); e != nil {
			return e
		}
		if src.FilterSubject != "" && !router.ValidSubject(src.FilterSubject) {
			return newErr(errStreamCreate, "err", "subject filter '"+src.FilterSubject+"' for the source: invalid subject")
		}
		if e := externalRules(src.External, cfg.Subjects); e != nil {
			return e
		}
	}
	return nil
}

// maxLinkTransforms bounds a mirror's or source's transforms: their
// overlap check compares every pair on the Manager goroutine, and 30,000
// of them (one request's worth) held it for 52 seconds.
const maxLinkTransforms = 1000

// transformRules compiles a source's transforms and refuses overlapping
// filters, which would copy one message twice.
func transformRules(s *StreamSource, badSrc, badDest, overlap errDef) *APIError {
	if len(s.SubjectTransforms) > maxLinkTransforms {
		return newErr(badDest, "err", "more than "+strconv.Itoa(maxLinkTransforms)+" subject transforms")
	}
	for i, tc := range s.SubjectTransforms {
		if tc.Source != "" && !router.ValidSubject(tc.Source) {
			return newErr(badSrc, "err", "invalid subject "+tc.Source)
		}
		if _, err := compileTransform(tc); err != nil {
			return newErr(badDest, "err", err.Error())
		}
		for _, o := range s.SubjectTransforms[i+1:] {
			if router.SubjectsCollide(orAll(tc.Source), orAll(o.Source)) {
				return newErr(overlap)
			}
		}
	}
	return nil
}

func orAll(filter string) string {
	if filter == "" {
		return ">"
	}
	return filter
}

// originRules checks a config against the streams that exist: no cycle of
// mirrors and sources (one that reaches back to cfg with subjects it would
// copy again), and a max message size that takes the origin's messages.
// An origin that does not exist yet is allowed: copying starts when it
// appears, as nats-server's.
func (m *Manager) originRules(cfg *StreamConfig) *APIError {
	lookup := func(name string) *StreamConfig {
		if name == cfg.Name {
			return cfg
		}
		if st := m.streams[name]; st != nil {
			return &st.cfg
		}
		return nil
	}
	sizeOK := func(o *StreamConfig) bool {
		return o == nil || o == cfg || cfg.MaxMsgSize <= 0 || o.MaxMsgSize <= 0 || cfg.MaxMsgSize >= o.MaxMsgSize
	}
	// An external origin is in another domain or account: it is not
	// looked up here, and a cycle through it cannot be seen (nor does
	// nats-server look).
	if mr := cfg.Mirror; mr != nil && mr.External == nil && !sizeOK(lookup(mr.Name)) {
		return newErr(errMirrorMsgSize)
	}
	for _, src := range cfg.Sources {
		if src.External == nil && !sizeOK(lookup(src.Name)) {
			return newErr(errSourceMsgSize)
		}
	}
	cycle := newErr(errStreamConfig, "err", "detected cycle")
	visited := map[string]bool{}
	queue := []*StreamConfig{cfg}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		visited[c.Name] = true
		for _, src := range c.Sources {
			if src.External != nil {
				continue
			}
			if visited[src.Name] {
				if src.FilterSubject == "" || collidesAny(src.FilterSubject, heldSubjects(c, lookup, map[string]bool{})) {
					return cycle
				}
			} else if o := lookup(src.Name); o != nil {
				queue = append(queue, o)
			}
		}
		if mr := c.Mirror; mr != nil && mr.External == nil {
			if visited[mr.Name] {
				return cycle
			}
			if o := lookup(mr.Name); o != nil {
				queue = append(queue, o)
			}
		}
		if len(visited) > 10_000 {
			return cycle // a graph this deep is refused rather than walked on
		}
	}
	return nil
}

// heldSubjects is every subject c can hold: its own, and those its mirror
// and sources copy in (a filter, a transform's destination with its
// wildcards as '*', or all the origin holds). nats-server looks at c's own
// subjects only, which misses a cycle carried by copied subjects: a
// message would then circle for ever.
func heldSubjects(c *StreamConfig, lookup func(string) *StreamConfig, seen map[string]bool) []string {
	if seen[c.Name] {
		return nil
	}
	seen[c.Name] = true
	held := append([]string(nil), c.Subjects...)
	from := func(s *StreamSource) {
		switch {
		case len(s.SubjectTransforms) > 0:
			for _, t := range s.SubjectTransforms {
				held = append(held, subjtr.Shape(orAll(t.Destination)))
			}
		case s.FilterSubject != "":
			held = append(held, s.FilterSubject)
		case s.External != nil: // another domain's subjects are not known here
		default:
			if o := lookup(s.Name); o != nil {
				held = append(held, heldSubjects(o, lookup, seen)...)
			}
		}
	}
	if c.Mirror != nil {
		from(c.Mirror)
	}
	for _, s := range c.Sources {
		if s != nil {
			from(s)
		}
	}
	return held
}

// mirrorUpdateRules refuses a change to a mirror's config, as nats-server;
// removing it promotes the mirror to a plain stream.
func mirrorUpdateRules(old, cfg *StreamConfig) *APIError {
	if cfg.Mirror != nil && !sameJSON(old.Mirror, cfg.Mirror) {
		return newErr(errMirrorNotUpdatable)
	}
	return nil
}

// iname identifies a source by what it copies, as nats-server's index
// name: "<origin> <filters> <destinations>", each list joined by '\f',
// ">" for an empty filter or destination. Sourced messages carry it in
// their header, which is how a restart finds where each source stopped.
func (s *StreamSource) iname() string {
	name := s.Name
	if s.External != nil {
		name += ":" + extHash(s.External.APIPrefix)
	}
	src, dest := orAll(s.FilterSubject), ">"
	if len(s.SubjectTransforms) > 0 {
		var srcs, dests []string
		for _, t := range s.SubjectTransforms {
			srcs, dests = append(srcs, orAll(t.Source)), append(dests, orAll(t.Destination))
		}
		src, dest = strings.Join(srcs, "\f"), strings.Join(dests, "\f")
	}
	return name + " " + src + " " + dest
}

// sourceHeaderValue is the Nats-Stream-Source value for origin message seq
// on subject, copied by the source named iname.
func sourceHeaderValue(iname string, seq uint64, subject, ident string) string {
	name, rest, _ := strings.Cut(iname, " ")
	v := name + " " + strconv.FormatUint(seq, 10) + " " + rest + " " + subject
	if ident != "" {
		v += " " + ident
	}
	return v
}

// parseSourceHeader returns the iname, origin sequence and origin
// identity ("" in headers older than nats-server 2.15's) of a
// Nats-Stream-Source value, or ok false.
func parseSourceHeader(v string) (iname string, seq uint64, ident string, ok bool) {
	f := strings.Split(v, " ")
	if len(f) < 4 {
		return "", 0, "", false
	}
	seq, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return "", 0, "", false
	}
	if len(f) >= 6 {
		ident = f[5]
	}
	return f[0] + " " + f[2] + " " + f[3], seq, ident, true
}

// identDigits are the digits of a stream identity.
const identDigits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// identity names one incarnation of a stream as nats-server 2.15 does in
// the sixth field of Nats-Stream-Source: eight base-62 digits of the
// SHA-256 of its creation time (RFC 3339, ns, UTC). A stream deleted and
// created again under the same name has another, so a source that sees
// its origin's change starts over (pull).
// It is computed once (created never changes): links ask on every copy.
func (st *stream) identity() string {
	if st.ident == "" {
		st.ident = identityOf(st.created)
	}
	return st.ident
}

func identityOf(created time.Time) string {
	return hash8(created.UTC().Format(time.RFC3339Nano))
}

// hash8 is eight base-62 digits of the SHA-256 of s.
func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	var b [8]byte
	for i := range b {
		b[i] = identDigits[int(sum[i])%len(identDigits)]
	}
	return string(b[:])
}

// sourcedHeader is hdr with the headers a copy must not keep (an earlier
// hop's Nats-Stream-Source, the Nats-Expected-* checks, meant for the
// origin; Nats-Batch-*, as nats-server: a copy is no batch) removed and
// this copy's Nats-Stream-Source appended.
func sourcedHeader(hdr []byte, value string) []byte {
	out := []byte("NATS/1.0\r\n")
	if len(hdr) > 0 {
		status, rest, _ := strings.Cut(string(hdr), "\r\n")
		out = append(out[:0], status...)
		out = append(out, "\r\n"...)
		for _, line := range strings.Split(rest, "\r\n") {
			k, _, _ := strings.Cut(line, ":")
			k = strings.TrimSpace(k)
			if line == "" || strings.EqualFold(k, hdrStreamSource) || hasPrefixFold(k, "Nats-Expected-") || hasPrefixFold(k, "Nats-Batch-") {
				continue
			}
			out = append(out, line...)
			out = append(out, "\r\n"...)
		}
	}
	out = append(out, hdrStreamSource+": "...)
	out = append(out, value...)
	return append(out, "\r\n\r\n"...)
}

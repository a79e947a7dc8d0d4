package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Priority groups (nats-server 2.11+, API level 1): a pull consumer names
// groups its clients pull in, and a policy decides which waiting pull gets
// the next message:
//   - overflow: a pull with min_pending / min_ack_pending is served only
//     while the consumer is that far behind (a standby that takes over load);
//   - pinned_client: one client (the first pull served) gets a pin id, sent
//     as Nats-Pin-Id on every message; pulls without it wait, pulls with a
//     stale one are refused with 423, until the pin is unpinned or the
//     pinned client sends no pull for priority_timeout;
//   - prioritized: waiting pulls are served by their priority, 0 first.
const (
	policyNone        = "none"
	policyOverflow    = "overflow"
	policyPinned      = "pinned_client"
	policyPrioritized = "prioritized"

	defaultPinnedTTL = 2 * time.Minute // as nats-server's, for pinned_client
	maxPullPriority  = 9
)

// PriorityGroupState is one group's state in consumer info. nats-server
// keeps one pin per consumer and reports it on the first group; so does
// this. PinnedTS is zero (and shown so) when nothing is pinned.
type PriorityGroupState struct {
	Group          string    `json:"group"`
	PinnedClientID string    `json:"pinned_client_id,omitempty"`
	PinnedTS       time.Time `json:"pinned_ts,omitempty"`
}

// validGroupName: 1 to 16 of A-Z a-z 0-9 / _ = -, as nats-server.
func validGroupName(g string) bool {
	if len(g) == 0 || len(g) > 16 {
		return false
	}
	for i := 0; i < len(g); i++ {
		c := g[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '/' || c == '_' || c == '=' || c == '-') {
			return false
		}
	}
	return true
}

// normalizePriority checks a consumer's priority settings and fills the
// pinned timeout default. "none" is stored as absent, as nats-server shows it.
func normalizePriority(cfg *ConsumerConfig) *APIError {
	switch cfg.PriorityPolicy {
	case "", policyNone:
		cfg.PriorityPolicy = ""
	case policyOverflow, policyPinned, policyPrioritized:
	default:
		return newErr(errInvalidJSON, "err", "unknown priority policy: "+strconv.Quote(cfg.PriorityPolicy))
	}
	cfg.PinnedTTL = max(cfg.PinnedTTL, 0) // negative: cleared, as outside pedantic mode
	if cfg.PriorityPolicy == policyPinned && cfg.PinnedTTL == 0 {
		cfg.PinnedTTL = defaultPinnedTTL
	}
	if cfg.PriorityPolicy == "" {
		if len(cfg.PriorityGroups) > 0 {
			return newErr(errGroupsWithoutPolicy)
		}
		if cfg.PinnedTTL > 0 {
			return newErr(errPinnedTTLWithoutPolicy)
		}
		return nil
	}
	if cfg.DeliverSubject != "" {
		return newErr(errPushWithPriority)
	}
	if len(cfg.PriorityGroups) == 0 {
		return newErr(errPolicyWithoutGroup)
	}
	for _, g := range cfg.PriorityGroups {
		if g == "" {
			return newErr(errEmptyGroupName)
		}
		if !validGroupName(g) {
			return newErr(errInvalidGroupName)
		}
	}
	return nil
}

// pullPriority is the priority part of a JSON pull request.
type pullPriority struct {
	Group         string `json:"group,omitempty"`
	MinPending    int64  `json:"min_pending,omitempty"`
	MinAckPending int64  `json:"min_ack_pending,omitempty"`
	ID            string `json:"id,omitempty"`
	Priority      int    `json:"priority,omitempty"`
}

// admitPull checks a JSON pull request's priority fields against c, as
// nats-server does when the request arrives, and answers the refused ones
// itself. A request with c's pin id renews the pin's timeout.
func (c *consumer) admitPull(p pullPriority, reply string, now time.Time) bool {
	refuse := func(status string) bool {
		c.status(reply, []byte("NATS/1.0 "+status+"\r\n\r\n"))
		return false
	}
	policy := c.cfg.PriorityPolicy
	switch {
	case (p.MinPending != 0 || p.MinAckPending != 0) && policy != policyOverflow:
		return refuse("400 Bad Request - Not a Overflow Priority consumer")
	case p.ID != "" && policy != policyPinned:
		return refuse("400 Bad Request - Not a Pinned Client Priority consumer")
	case p.Priority < 0 || p.Priority > maxPullPriority:
		return refuse("400 Bad Request - Priority must be between 0 and 9")
	case policy == "":
		return true
	case p.Group == "":
		return refuse("400 Bad Request - Priority Group missing")
	case !slices.Contains(c.cfg.PriorityGroups, p.Group):
		return refuse("400 Bad Request - Invalid Priority Group")
	}
	if c.pin != "" {
		if p.ID == c.pin {
			c.pinDeadline = now.Add(c.cfg.PinnedTTL)
		} else if p.ID != "" {
			return refuse("423 Nats-Pin-Id mismatch")
		}
	}
	return true
}

// enqueuePull adds a request to c's waiting list: at the end, or for the
// prioritized policy behind every request of its priority or better.
func (c *consumer) enqueuePull(r *pullRequest) {
	if c.cfg.PriorityPolicy != policyPrioritized {
		c.waiting = append(c.waiting, r)
		return
	}
	i := len(c.waiting)
	for j, w := range c.waiting {
		if w.priority > r.priority {
			i = j
			break
		}
	}
	c.waiting = slices.Insert(c.waiting, i, r)
}

// served updates the waiting list after the request at i took a message:
// it leaves when its batch is spent; a prioritized one goes behind the
// others of its priority, so equal pulls take turns.
func (c *consumer) served(i int) {
	r := c.waiting[i]
	if r.batch <= 0 {
		c.waiting = slices.Delete(c.waiting, i, i+1)
		return
	}
	if c.cfg.PriorityPolicy == policyPrioritized {
		c.waiting = slices.Delete(c.waiting, i, i+1)
		c.enqueuePull(r)
	}
}

// pickRequest returns the index of the waiting request the next message
// (size bytes, as pump counts them) goes to, or -1 when no request may take
// it now. Requests that can never take it (too small a max_bytes, a stale
// pin id) are answered and dropped on the way.
func (c *consumer) pickRequest(size int, now time.Time) int {
	pending := int64(-1) // overflowPending(), computed once if a pull asks
	for i := 0; i < len(c.waiting); {
		r := c.waiting[i]
		pinned := false // the pin was given to r just now
		switch c.cfg.PriorityPolicy {
		case policyPinned:
			switch {
			case c.pin == "" && r.pinID == "":
				pinned = c.pinTo(r, now)
			case c.pin == "" || (r.pinID != "" && r.pinID != c.pin):
				c.dropRequest(i, "423 Nats-Wrong-Pin-Id")
				continue
			case r.pinID != c.pin:
				i++ // not the pinned client: waits for the pin to go
				continue
			}
		case policyOverflow:
			if r.minPending > 0 || r.minAckPending > 0 {
				if r.minPending > 0 && pending < 0 {
					pending = c.overflowPending()
				}
				if !(r.minPending > 0 && r.minPending <= pending || r.minAckPending > 0 && r.minAckPending <= int64(len(c.pending))) {
					i++ // the consumer is not that far behind yet
					continue
				}
			}
		}
		if r.maxBytes > 0 && size > r.maxBytes {
			if pinned {
				c.unpin()
			}
			c.waiting = slices.Delete(c.waiting, i, i+1)
			c.status(r.reply, []byte("NATS/1.0 409 Message Size Exceeds MaxBytes\r\n\r\n"))
			continue
		}
		if pinned {
			c.fx.pins = append(c.fx.pins, pinNote{group: c.pinGroup, id: c.pin})
		}
		return i
	}
	return -1
}

// overflowPending is what min_pending is compared with, as nats-server
// counts it: the messages not yet delivered, plus the one at hand. O(1)
// for an unfiltered stream without gaps, like the ack subject's count.
func (c *consumer) overflowPending() int64 {
	first := c.st.store.State().FirstSeq
	return int64(min(c.numPendingFast(max(c.next, first)-1), 1<<62)) + 1
}

// dropRequest ends the waiting request at i with status, saying what it
// had left.
func (c *consumer) dropRequest(i int, status string) {
	r := c.waiting[i]
	c.waiting = slices.Delete(c.waiting, i, i+1)
	c.status(r.reply, fmt.Appendf(nil, "NATS/1.0 %s\r\nNats-Pending-Messages: %d\r\nNats-Pending-Bytes: %d\r\n\r\n", status, max(r.batch, 0), max(r.maxBytes, 0)))
}

// pinTo pins c to the client that sent r, when r names a group (a pull
// without a JSON body names none and is served unpinned).
func (c *consumer) pinTo(r *pullRequest, now time.Time) bool {
	if r.group == "" {
		return false
	}
	c.pin, c.pinGroup, c.pinnedTS, c.pinDeadline = newPinID(), r.group, now.UTC(), now.Add(c.cfg.PinnedTTL)
	r.pinID = c.pin
	return true
}

func (c *consumer) unpin() {
	c.pin, c.pinGroup, c.pinnedTS, c.pinDeadline = "", "", time.Time{}, time.Time{}
}

// tickPin drops a pin whose client sent no pull for priority_timeout and
// reports whether it did, so the waiting pulls are served.
func (c *consumer) tickPin(now time.Time) bool {
	if c.pin == "" || now.Before(c.pinDeadline) {
		return false
	}
	c.fx.unpins = append(c.fx.unpins, pinNote{group: c.pinGroup})
	c.unpin()
	return true
}

// newPinID is a random 22-character id, the length of nats-server's nuid.
func newPinID() string {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 22)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// priorityState is consumer info's priority_groups.
func (c *consumer) priorityState() []PriorityGroupState {
	if len(c.cfg.PriorityGroups) == 0 {
		return nil
	}
	return []PriorityGroupState{{Group: c.cfg.PriorityGroups[0], PinnedClientID: c.pin, PinnedTS: c.pinnedTS}}
}

// pinHeader adds the pin id to a message for a pinned_client consumer.
func (c *consumer) pinHeader(hdr []byte) []byte {
	if c.cfg.PriorityPolicy != policyPinned || c.pin == "" {
		return hdr
	}
	return appendHeader(hdr, "Nats-Pin-Id", c.pin)
}

const typeConsumerUnpin = "io.nats.jetstream.api.v1.consumer_unpin_response"

// consumerUnpin serves CONSUMER.UNPIN.<stream>.<consumer> {"group":...}:
// the pin goes, and the next pull in the group gets a new one.
func (m *Manager) consumerUnpin(streamName, name string, body []byte, now time.Time) []byte {
	typ := typeConsumerUnpin
	var req struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(body), &req); err != nil {
		return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
	}
	if req.Group == "" {
		return m.fail(typ, newErr(errInvalidJSON, "err", "consumer group not specified"))
	}
	if !validGroupName(req.Group) {
		return m.fail(typ, newErr(errInvalidGroupName))
	}
	st := m.streams[streamName]
	if st == nil {
		return m.fail(typ, newErr(errStreamNotFound))
	}
	c := st.consumers[name]
	if c == nil {
		return m.fail(typ, newErr(errConsumerNotFound))
	}
	if !slices.Contains(c.cfg.PriorityGroups, req.Group) {
		return m.fail(typ, newErr(errNoSuchGroup))
	}
	c.unpin()
	m.adviseUnpinned(c, req.Group, "admin")
	m.pump(c, now)
	return mustJSON(apiResponse{Type: typ})
}

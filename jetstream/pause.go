package jetstream

// Concurrency: runs on the JetStream Manager goroutine only, which owns
// streams, consumers and their stores; no locks.

import (
	"bytes"
	"encoding/json"
	"time"
)

type pauseRequest struct {
	PauseUntil time.Time `json:"pause_until,omitempty"`
}

type pauseResponse struct {
	apiResponse
	Paused         bool          `json:"paused"`
	PauseUntil     time.Time     `json:"pause_until"`
	PauseRemaining time.Duration `json:"pause_remaining,omitempty"`
}

// consumerPause serves CONSUMER.PAUSE.<stream>.<consumer>: a pause_until
// in the future pauses the consumer until then; none, or one past,
// resumes it. The time is part of the config, so a durable consumer stays
// paused across a restart, as nats-server's.
func (m *Manager) consumerPause(streamName, name string, body []byte, now time.Time) []byte {
	typ := typeConsumerPause
	var req pauseRequest
	if b := bytes.TrimSpace(body); len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &req); err != nil {
			return m.fail(typ, newErr(errInvalidJSON, "err", m.publicErr(err)))
		}
	}
	st := m.streams[streamName]
	if st == nil {
		return m.fail(typ, newErr(errStreamNotFound))
	}
	c := st.consumers[name]
	if c == nil {
		return m.fail(typ, newErr(errConsumerNotFound))
	}
	until := req.PauseUntil.UTC()
	if _, err := until.MarshalJSON(); err != nil { // a year-0 time with a positive offset is year -1 in UTC
		return m.fail(typ, newErr(errInvalidJSON, "err", err.Error()))
	}
	prev := c.cfg.PauseUntil
	c.cfg.PauseUntil = nil
	if !until.IsZero() {
		c.cfg.PauseUntil = &until
	}
	if c.log != nil {
		if err := c.writeMeta(); err != nil {
			c.cfg.PauseUntil = prev
			return m.fail(typ, newErr(errConsumerStore, "err", m.publicErr(err)))
		}
	}
	m.pauseChanged(c, prev, now)
	resp := pauseResponse{apiResponse: apiResponse{Type: typ}, PauseUntil: until}
	if resp.Paused = c.paused(now); resp.Paused {
		resp.PauseRemaining = until.Sub(now)
	} else {
		m.pump(c, now) // resumed: serve what waited
	}
	return mustJSON(resp)
}

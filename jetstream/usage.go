package jetstream

// Concurrency: Usage runs on any goroutine; it queues a request that the
// Manager goroutine answers (the only place streams and consumers are
// read), and waits for that answer.

import (
	"errors"
	"sort"
	"time"
)

// Usage is JetStream's state at one moment, for monitoring (/jsz, /varz,
// /metrics).
type Usage struct {
	APILevel                      int
	APITotal, APIErrors           uint64
	Memory, Store                 uint64 // bytes held by memory and file streams
	ReservedMemory, ReservedStore uint64 // their max_bytes, summed
	Streams                       []StreamUsage
}

// StreamUsage is one stream's info and, when asked for, its consumers'.
type StreamUsage struct {
	Info      *StreamInfo
	Consumers []*ConsumerInfo // sorted by name; nil unless Usage was asked for them
}

// ErrUsageTimeout is Usage's error when the Manager did not answer in time.
var ErrUsageTimeout = errors.New("jetstream: usage: manager did not answer in time")

// Usage asks the Manager goroutine for every stream's state, sorted by
// name, and with consumers each consumer's (whose pending count may cost
// a walk of a filtered stream); it waits at most timeout.
func (m *Manager) Usage(consumers bool, timeout time.Duration) (*Usage, error) {
	done := make(chan *Usage, 1)
	m.enqueue(request{run: func() { done <- m.usage(time.Now(), consumers) }})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case u := <-done:
		return u, nil
	case <-t.C:
		return nil, ErrUsageTimeout
	case <-m.done:
		return nil, ErrUsageTimeout
	}
}

// usage runs on the Manager goroutine.
func (m *Manager) usage(now time.Time, consumers bool) *Usage {
	u := &Usage{APILevel: apiLevel, APITotal: m.apiTotal, APIErrors: m.apiErrors}
	for _, st := range m.streams {
		su := StreamUsage{Info: m.streamInfo(st, now)}
		used, reserved := &u.Store, &u.ReservedStore
		if st.cfg.Storage == "memory" {
			used, reserved = &u.Memory, &u.ReservedMemory
		}
		*used += su.Info.State.Bytes
		if st.cfg.MaxBytes > 0 {
			*reserved += uint64(st.cfg.MaxBytes)
		}
		for _, c := range st.consumers {
			if !consumers {
				break
			}
			su.Consumers = append(su.Consumers, c.info(now))
		}
		sort.Slice(su.Consumers, func(i, j int) bool { return su.Consumers[i].Name < su.Consumers[j].Name })
		u.Streams = append(u.Streams, su)
	}
	sort.Slice(u.Streams, func(i, j int) bool { return u.Streams[i].Info.Config.Name < u.Streams[j].Info.Config.Name })
	return u
}

// Account is the account whose streams m serves ("$G": the global one).
func (m *Manager) Account() string { return m.cfg.Account }

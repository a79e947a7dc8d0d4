package loop_test

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go"
)

// bigPayload is message i of TestLargePayloadsAcrossLoops: its index in
// the first bytes, then a pattern that differs per message.
func bigPayload(i int) []byte {
	sizes := []int{100, 16<<10 - 1, 16 << 10, 40 << 10, 300 << 10}
	p := make([]byte, sizes[i%len(sizes)])
	for j := range p {
		p[j] = byte(i*31 + j*7)
	}
	binary.BigEndian.PutUint32(p, uint32(i))
	return p
}

// TestLargePayloadsAcrossLoops: payloads above and below the size that
// crosses loops by reference, with and without headers, reach plain
// subscribers (two on one connection), a wildcard one and a queue group
// spread over the loops, byte for byte and each once.
func TestLargePayloadsAcrossLoops(t *testing.T) {
	const n = 120
	eachTransport(t, loop.Options{}, func(t *testing.T, s *loop.Server) {
		type recv struct {
			name string
			mu   sync.Mutex
			got  map[int]int
		}
		var all []*recv
		var queue []*recv
		add := func(nc *nats.Conn, name, subject, group string) *recv {
			r := &recv{name: name, got: map[int]int{}}
			h := func(m *nats.Msg) {
				i := int(binary.BigEndian.Uint32(m.Data))
				ok := bytes.Equal(m.Data, bigPayload(i)) && (i%2 == 0 || m.Header.Get("k") == strconv.Itoa(i))
				r.mu.Lock()
				if ok {
					r.got[i]++
				} else {
					r.got[-1]++
				}
				r.mu.Unlock()
			}
			var sub *nats.Subscription
			var err error
			if group != "" {
				sub, err = nc.QueueSubscribe(subject, group, h)
			} else {
				sub, err = nc.Subscribe(subject, h)
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = sub.SetPendingLimits(-1, -1)
			return r
		}
		for k := 0; k < 3; k++ { // three connections: with 3 loops, one on each
			nc := connect(t, s)
			all = append(all, add(nc, "plain"+strconv.Itoa(k), "big.data", ""))
			if k == 0 {
				all = append(all, add(nc, "second", "big.data", ""), add(nc, "wildcard", "big.*", ""))
			}
			queue = append(queue, add(nc, "q"+strconv.Itoa(k), "big.data", "g"))
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
		pub := connect(t, s)
		for i := 0; i < n; i++ {
			m := nats.NewMsg("big.data")
			m.Data = bigPayload(i)
			if i%2 == 1 {
				m.Header.Set("k", strconv.Itoa(i))
			}
			if err := pub.PublishMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			t.Fatal(err)
		}
		count := func(rs []*recv) (total, bad int) {
			for _, r := range rs {
				r.mu.Lock()
				for i, c := range r.got {
					if i < 0 {
						bad += c
					} else {
						total += c
					}
				}
				r.mu.Unlock()
			}
			return
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			a, _ := count(all)
			q, _ := count(queue)
			if a == n*len(all) && q == n || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		for _, r := range all {
			r.mu.Lock()
			for i := 0; i < n; i++ {
				if r.got[i] != 1 {
					t.Errorf("%s: message %d received %d times", r.name, i, r.got[i])
				}
			}
			if r.got[-1] != 0 {
				t.Errorf("%s: %d messages with wrong bytes or headers", r.name, r.got[-1])
			}
			r.mu.Unlock()
		}
		if q, bad := count(queue); q != n || bad != 0 {
			t.Errorf("queue group: %d messages (%d wrong), want %d", q, bad, n)
		}
	})
}

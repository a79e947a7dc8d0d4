package loop_test

import (
	"testing"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestNodeNatsJS: nats.js, the Node.js client, unmodified, over TCP on
// every transport: ordered pub/sub, headers, request/reply, a queue group,
// JetStream publish acks, a durable pull consumer and a KV bucket
// (looptest/node/nats.mjs).
func TestNodeNatsJS(t *testing.T) {
	looptest.Each(t, loop.Options{JetStream: true}, func(t *testing.T, o loop.Options) {
		s := looptest.Start(t, o)
		looptest.NodeScript(t, "nats.mjs", s.Addr().String())
	})
}

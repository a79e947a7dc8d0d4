package jetstream_test

import (
	"context"
	"testing"

	"github.com/evnats/evnats/jetstream"
	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// BenchmarkSyncPublish is one synchronous publish round trip (publish,
// wait for the PubAck) through a real socket, with the publish handled in
// place when the Manager is idle and, to compare, always queued to it.
func BenchmarkSyncPublish(b *testing.B) {
	for _, storage := range []njs.StorageType{njs.MemoryStorage, njs.FileStorage} {
		for _, inPlace := range []bool{true, false} {
			name := storage.String()
			if inPlace {
				name += "/in-place"
			} else {
				name += "/queued"
			}
			b.Run(name, func(b *testing.B) {
				defer jetstream.SetPublishInPlace(inPlace)()
				s := looptest.Start(b, loop.Options{JetStream: true, Loops: 2})
				nc, err := nats.Connect(s.ClientURL())
				if err != nil {
					b.Fatal(err)
				}
				defer nc.Close()
				js, err := njs.New(nc)
				if err != nil {
					b.Fatal(err)
				}
				c := context.Background()
				if _, err := js.CreateStream(c, njs.StreamConfig{Name: "B", Subjects: []string{"b"}, Storage: storage}); err != nil {
					b.Fatal(err)
				}
				data := make([]byte, 16)
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := js.Publish(c, "b", data); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAsyncPublish publishes pipelined (up to 4,000 acks
// outstanding) to a file stream; "in-place" allows what is handled in
// place (a file stream's publishes are not: they queue either way).
func BenchmarkAsyncPublish(b *testing.B) {
	for _, inPlace := range []bool{true, false} {
		name := "queued"
		if inPlace {
			name = "in-place"
		}
		b.Run(name, func(b *testing.B) {
			defer jetstream.SetPublishInPlace(inPlace)()
			s := looptest.Start(b, loop.Options{JetStream: true, Loops: 2})
			nc, err := nats.Connect(s.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, err := njs.New(nc, njs.WithPublishAsyncMaxPending(4000))
			if err != nil {
				b.Fatal(err)
			}
			c := context.Background()
			if _, err := js.CreateStream(c, njs.StreamConfig{Name: "B", Subjects: []string{"b"}, Storage: njs.FileStorage}); err != nil {
				b.Fatal(err)
			}
			data := make([]byte, 128)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := js.PublishAsync("b", data); err != nil {
					b.Fatal(err)
				}
			}
			<-js.PublishAsyncComplete()
		})
	}
}

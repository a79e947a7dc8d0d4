package mqtt

import (
	"strings"
	"testing"

	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// TestPropsFromHeadersListNotKept: a NATS message with 200,000 one-letter
// headers (under 1 MB) becomes 200,000 user properties for each MQTT 5
// subscriber; the subscriber's connection must not keep that list (48
// bytes an entry, ten times the message) until it closes.
func TestPropsFromHeadersListNotKept(t *testing.T) {
	hdr := "NATS/1.0\r\n" + strings.Repeat("a:\r\n", 200_000) + "\r\n"
	var p mcodec.Properties
	var o outProps
	propsFromHeaders(&p, []byte(hdr), nil, 0, &o, false)
	if len(p.User) != 200_000 {
		t.Fatalf("%d user properties", len(p.User))
	}
	propsFromHeaders(&p, []byte("NATS/1.0\r\nk:v\r\n\r\n"), nil, 0, &o, false)
	if len(p.User) != 1 || cap(p.User) > 1024 {
		t.Fatalf("after a small message: %d user properties, a list of %d kept", len(p.User), cap(p.User))
	}
}

// TestAliasQuotaCountsKeptBytes: a client that gives each alias a 40 KiB
// topic, then a 1-byte one, must not leave each alias holding 40 KiB of
// buffer while the 64 KiB quota counts 1 byte (64 aliases: 2.5 MiB a
// connection).
func TestAliasQuotaCountsKeptBytes(t *testing.T) {
	m := &conn{}
	long := []byte(strings.Repeat("t", 40<<10))
	for a := uint16(1); a <= topicAliasMax; a++ {
		for _, topic := range [][]byte{long, []byte("x")} {
			p := &mcodec.Publish{Topic: topic}
			p.Props.Set(mcodec.PropTopicAlias)
			p.Props.TopicAlias = a
			if _, err := m.resolveAlias(p); err != nil {
				t.Fatalf("alias %d: %v", a, err)
			}
		}
	}
	kept := 0
	for _, topic := range m.aliasIn {
		kept += cap(topic)
	}
	if kept > maxAliasBytes || kept != m.aliasBytes {
		t.Fatalf("aliases keep %d bytes, counted %d (quota %d)", kept, m.aliasBytes, maxAliasBytes)
	}
}

// TestBareHeader: only the header block of an MQTT publish without
// properties skips the walk over its lines.
func TestBareHeader(t *testing.T) {
	for _, c := range []struct {
		hdr  string
		bare bool
	}{
		{"NATS/1.0\r\nNmqtt-Pub:0\r\n\r\n", true},
		{"NATS/1.0\r\nNmqtt-Pub:2\r\n\r\n", true},
		{"NATS/1.0\r\nNmqtt-Pub: 0\r\n\r\n", false},
		{"NATS/1.0\r\nNmqtt-Pub:0\r\nNmqtt-Src:7\r\n\r\n", false},
		{"NATS/1.0\r\nNmqtt-Pub:0\r\nk:v\r\n", false},
		{"NATS/1.0\r\nK:0\r\n\r\n", false},
		{"", false},
	} {
		if got := bareHeader([]byte(c.hdr)); got != c.bare {
			t.Errorf("bareHeader(%q) = %v, want %v", c.hdr, got, c.bare)
		}
	}
}

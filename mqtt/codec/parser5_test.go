package codec

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// props5 encodes a property list from raw id/value bytes.
func props5(raw ...byte) []byte { return append(AppendRemainingLength(nil, len(raw)), raw...) }

func connect5(props []byte) []byte {
	return packet(CONNECT<<4, str("MQTT"), []byte{5, 0x02, 0, 30}, props, str("dev-5"))
}

// stream5 is an MQTT 5 session using every client packet with properties.
func stream5() []byte {
	connProps := []byte{PropSessionExpiry, 0, 0, 0, 60, PropReceiveMaximum, 0, 10,
		PropMaximumPacketSize, 0, 1, 0, 0, PropTopicAliasMaximum, 0, 5, PropUserProperty}
	connProps = append(append(connProps, str("k")...), str("v")...)
	will := []byte{PropWillDelay, 0, 0, 0, 9, PropPayloadFormat, 1, PropContentType}
	will = append(will, str("text/plain")...)
	conn := packet(CONNECT<<4, str("MQTT"), []byte{5, 0x02 | 0x04 | 0x40, 0, 30}, props5(connProps...),
		str("dev-5"), props5(will...), str("w/t"), str("bye"), str("pw"))
	pubProps := []byte{PropTopicAlias, 0, 3, PropResponseTopic}
	pubProps = append(pubProps, str("re/ply")...)
	pubProps = append(pubProps, PropCorrelationData)
	pubProps = append(pubProps, str("\x00\x01")...)
	pubProps = append(pubProps, PropMessageExpiry, 0, 0, 1, 0)
	return bytes.Join([][]byte{
		conn,
		packet(PUBLISH<<4|1<<1, str("a/b"), []byte{0, 7}, props5(pubProps...), []byte("hello")),
		packet(PUBLISH<<4, str(""), props5(PropTopicAlias, 0, 3), []byte("again")),
		packet(PUBACK<<4, []byte{0, 7}),
		packet(PUBREC<<4, []byte{0, 8, 0x10}),
		packet(PUBCOMP<<4, []byte{0, 9, 0}, props5(PropReasonString, 0, 1, 'x')),
		packet(SUBSCRIBE<<4|2, []byte{0, 9}, props5(PropSubscriptionID, 0x80, 0x01), str("a/+"), []byte{1 | 4 | 8 | 2<<4}, str("$share/g/b"), []byte{0}),
		packet(UNSUBSCRIBE<<4|2, []byte{0, 10}, props5(), str("a/+")),
		packet(AUTH<<4, []byte{0x18}, props5(append([]byte{PropAuthMethod}, str("SCRAM")...)...)),
		packet(PINGREQ << 4),
		packet(DISCONNECT<<4, []byte{0x04}, props5(PropSessionExpiry, 0, 0, 0, 0)),
	}, nil)
}

var want5 = []string{
	`CONNECT MQTT/5 clean=true ka=30 id="dev-5" will=true/0/false "w/t"="bye" user="" pass="pw" { 0x11=60 0x21=10 0x22=5 0x26=k:v; 0x27=65536 } { 0x1=1 0x3="text/plain" 0x18=9 }`,
	`PUBLISH "a/b" q1 r=false d=false id=7 "hello" { 0x2=256 0x8="re/ply" 0x9="\x00\x01" 0x23=3 }`,
	`PUBLISH "" q0 r=false d=false id=0 "again" { 0x23=3 }`,
	"ACK 4 7", "ACK 5 8 reason=0x10", "ACK 7 9",
	"SUBSCRIBE 9 a/+:1(nl=true rap=true rh=2 id=128) $share/g/b:0(nl=false rap=false rh=0 id=128)",
	"UNSUBSCRIBE 10 a/+",
	`AUTH reason=0x18 { 0x15="SCRAM" }`,
	"PINGREQ",
	"DISCONNECT reason=0x4 { 0x11=0 }",
}

func TestParse5EverySplit(t *testing.T) {
	b := stream5()
	for i := 0; i <= len(b); i++ {
		r := &rec{}
		p := NewParser(r)
		if err := p.Parse(b[:i]); err != nil {
			t.Fatalf("split %d: %v", i, err)
		}
		if err := p.Parse(b[i:]); err != nil {
			t.Fatalf("split %d: %v", i, err)
		}
		if got := strings.Join(r.ops, "\n"); got != strings.Join(want5, "\n") {
			t.Fatalf("split %d:\n%s", i, got)
		}
	}
}

// TestMalformed5: every malformed MQTT 5 packet fails with the reason code
// MQTT 5.0 names for it.
func TestMalformed5(t *testing.T) {
	conn := connect5(props5())
	after := func(b ...[]byte) []byte { return append(bytes.Clone(conn), bytes.Join(b, nil)...) }
	cases := []struct {
		name   string
		in     []byte
		reason byte
	}{
		{"unknown property id", connect5(props5(0x7f, 0)), ReasonMalformed},
		{"property id 0x04 unassigned", connect5(props5(0x04, 0)), ReasonMalformed},
		{"property in the wrong packet", connect5(props5(PropTopicAlias, 0, 1)), ReasonMalformed},
		{"server-only property from client", connect5(props5(PropAssignedClientID, 0, 1, 'x')), ReasonMalformed},
		{"duplicated property", connect5(props5(PropSessionExpiry, 0, 0, 0, 1, PropSessionExpiry, 0, 0, 0, 2)), ReasonProtocolError},
		{"receive maximum 0", connect5(props5(PropReceiveMaximum, 0, 0)), ReasonProtocolError},
		{"maximum packet size 0", connect5(props5(PropMaximumPacketSize, 0, 0, 0, 0)), ReasonProtocolError},
		{"request problem info 2", connect5(props5(PropRequestProblemInfo, 2)), ReasonProtocolError},
		{"auth data without method", connect5(props5(PropAuthData, 0, 1, 'x')), ReasonProtocolError},
		{"property list longer than packet", connect5([]byte{9, PropSessionExpiry}), ReasonMalformed},
		{"truncated property value", connect5(props5(PropSessionExpiry, 0, 0)), ReasonMalformed},
		{"bad utf-8 in user property", connect5(props5(PropUserProperty, 0, 1, 0xff, 0, 0)), ReasonMalformed},
		{"topic alias 0", after(packet(PUBLISH<<4, str("a"), props5(PropTopicAlias, 0, 0))), ReasonTopicAliasInvalid},
		{"empty topic without alias", after(packet(PUBLISH<<4, str(""), props5())), ReasonProtocolError},
		{"subscription id in publish", after(packet(PUBLISH<<4, str("a"), props5(PropSubscriptionID, 1))), ReasonProtocolError},
		{"payload not utf-8", after(packet(PUBLISH<<4, str("a"), props5(PropPayloadFormat, 1), []byte{0xff})), ReasonPayloadFormatInvalid},
		{"payload format 2", after(packet(PUBLISH<<4, str("a"), props5(PropPayloadFormat, 2))), ReasonProtocolError},
		{"duplicated topic alias", after(packet(PUBLISH<<4, str("a"), props5(PropTopicAlias, 0, 1, PropTopicAlias, 0, 1))), ReasonProtocolError},
		{"session expiry in publish", after(packet(PUBLISH<<4, str("a"), props5(PropSessionExpiry, 0, 0, 0, 1))), ReasonMalformed},
		{"subscription id 0", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(PropSubscriptionID, 0), str("a"), []byte{0})), ReasonProtocolError},
		{"two subscription ids", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(PropSubscriptionID, 1, PropSubscriptionID, 2), str("a"), []byte{0})), ReasonProtocolError},
		{"reserved subscription options", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(), str("a"), []byte{0x40})), ReasonMalformed},
		{"retain handling 3", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(), str("a"), []byte{0x30})), ReasonProtocolError},
		{"no local on shared", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(), str("$share/g/a"), []byte{0x04})), ReasonProtocolError},
		{"reason string in subscribe", after(packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(PropReasonString, 0, 0), str("a"), []byte{0})), ReasonMalformed},
		{"bad property in puback", after(packet(PUBACK<<4, []byte{0, 1, 0}, props5(PropContentType, 0, 0))), ReasonMalformed},
		{"bad property in disconnect", after(packet(DISCONNECT<<4, []byte{0}, props5(PropTopicAlias, 0, 1))), ReasonMalformed},
		{"bytes after disconnect", after(packet(DISCONNECT<<4, []byte{0}, props5(), []byte{1})), ReasonMalformed},
		{"auth flags", after(packet(AUTH<<4|1, []byte{0})), ReasonMalformed},
		{"second connect", after(conn), ReasonProtocolError},
	}
	for _, c := range cases {
		err := NewParser(&rec{}).Parse(c.in)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if got := Reason(err); got != c.reason {
			t.Errorf("%s: %v, reason %#x, want %#x", c.name, err, got, c.reason)
		}
	}
	p := NewParser(&rec{})
	p.MaxPacket = 100
	if err := p.Parse(append(bytes.Clone(conn), packet(PUBLISH<<4, str("a"), props5(), make([]byte, 200))...)); Reason(err) != ReasonPacketTooLarge {
		t.Errorf("max packet: %v", err)
	}
	// AUTH is not an MQTT 3.1.1 packet.
	if err := NewParser(&rec{}).Parse(append(connectPacket(), packet(AUTH<<4, []byte{0})...)); !errors.Is(err, ErrPacketType) {
		t.Errorf("AUTH on 3.1.1: %v", err)
	}
}

// TestEncoders5: what the broker sends decodes back to the same values.
func TestEncoders5(t *testing.T) {
	var pr Properties
	pr.Set(PropSessionExpiry)
	pr.SessionExpiry = 3600
	pr.Set(PropAssignedClientID)
	pr.AssignedClientID = []byte("auto-1")
	pr.Set(PropTopicAliasMaximum)
	pr.TopicAliasMaximum = 10
	pr.Set(PropUserProperty)
	pr.User = []UserProperty{{[]byte("a"), []byte("1")}, {[]byte("a"), []byte("2")}}
	got := AppendConnack5(nil, true, ReasonSuccess, &pr)
	want := []byte{0x20, 0}
	body := []byte{1, 0}
	plist := []byte{PropSessionExpiry, 0, 0, 0x0e, 0x10, PropAssignedClientID, 0, 6, 'a', 'u', 't', 'o', '-', '1',
		PropTopicAliasMaximum, 0, 10, PropUserProperty, 0, 1, 'a', 0, 1, '1', PropUserProperty, 0, 1, 'a', 0, 1, '2'}
	body = append(append(body, byte(len(plist))), plist...)
	want[1] = byte(len(body))
	want = append(want, body...)
	if !bytes.Equal(got, want) {
		t.Fatalf("connack\n got % x\nwant % x", got, want)
	}
	if got := AppendConnack5(nil, false, ReasonBadAuthMethod, nil); !bytes.Equal(got, []byte{0x20, 3, 0, 0x8c, 0}) {
		t.Fatalf("refusing connack % x", got)
	}
	// PUBLISH with properties round-trips through a parser (a client
	// decodes what the broker sends with the same rules).
	var pp Properties
	pp.Set(PropSubscriptionID)
	pp.SubIDs = []uint32{1, 300}
	pp.Set(PropContentType)
	pp.ContentType = []byte("json")
	hdr := AppendPublishHeader5(nil, "t/1", 4, 1, true, false, 5, &pp)
	pkt := append(hdr, "data"...)
	if len(pkt) != PublishSize5(3, 4, 1, &pp) {
		t.Fatalf("PublishSize5 %d, packet %d", PublishSize5(3, 4, 1, &pp), len(pkt))
	}
	var back reader
	back.b = pkt[2+2+3+2:]
	var dec Properties
	if err := back.properties(CONNACK|0, &dec); err == nil {
		t.Fatal("subscription id accepted in CONNACK")
	}
	back.b = pkt[2+2+3+2:]
	if err := back.properties(PUBLISH, &dec); err != nil || string(back.b) != "data" ||
		len(dec.SubIDs) != 2 || dec.SubIDs[1] != 300 || string(dec.ContentType) != "json" {
		t.Fatalf("decoded %v %+v rest %q", err, dec, back.b)
	}
	if got := AppendAck5(nil, PUBACK, 7, 0, nil); !bytes.Equal(got, []byte{0x40, 2, 0, 7}) {
		t.Fatalf("short puback % x", got)
	}
	if got := AppendAck5(nil, PUBREC, 7, ReasonNoMatchingSubscribers, nil); !bytes.Equal(got, []byte{0x50, 4, 0, 7, 0x10, 0}) {
		t.Fatalf("puback with reason % x", got)
	}
	if got := AppendSuback5(nil, UNSUBACK, 3, []byte{0, 0x11}, nil); !bytes.Equal(got, []byte{0xb0, 5, 0, 3, 0, 0, 0x11}) {
		t.Fatalf("unsuback % x", got)
	}
	if got := AppendDisconnect5(nil, ReasonTopicAliasInvalid, nil); !bytes.Equal(got, []byte{0xe0, 2, 0x94, 0}) {
		t.Fatalf("disconnect % x", got)
	}
	if got := AppendAuth(nil, 0, nil); !bytes.Equal(got, []byte{0xf0, 0}) {
		t.Fatalf("auth % x", got)
	}
}

// FuzzParser5 checks that MQTT 5 input decodes the same in any split and
// never panics; its seed corpus (testdata/fuzz/FuzzParser5) runs with
// every `go test`.
func FuzzParser5(f *testing.F) {
	f.Add(stream5(), 7)
	f.Add(connect5(props5(PropUserProperty, 0, 1, 'k', 0, 1, 'v', PropUserProperty, 0, 0, 0, 0)), 3)
	f.Add(append(connect5(props5()), packet(PUBLISH<<4, str(""), props5(PropTopicAlias, 0, 0))...), 9)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole := &rec{}
		errW := NewParser(whole).Parse(data)
		if split < 0 {
			split = -split
		}
		split %= len(data) + 1
		parts := &rec{}
		p := NewParser(parts)
		errP := p.Parse(data[:split])
		if errP == nil {
			errP = p.Parse(data[split:])
		}
		if (errW == nil) != (errP == nil) || (errW != nil && Reason(errW) != Reason(errP)) {
			t.Fatalf("whole %v split %v", errW, errP)
		}
		if strings.Join(whole.ops, "\n") != strings.Join(parts.ops, "\n") {
			t.Fatalf("ops differ:\n%s\n--\n%s", whole.ops, parts.ops)
		}
	})
}

// TestFuzzSeedsPresent: the checked-in seed corpus, which every go test
// runs through FuzzParser5, is there.
func TestFuzzSeedsPresent(t *testing.T) {
	ents, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzParser5"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("seed corpus missing: %v", err)
	}
}

// TestPropertyListsNotKept: a packet with 100,000 user properties (500 KB)
// must not leave the parser holding a list of 100,000 entries (4.8 MB, ten
// times the packet, for the connection's life), nor pointers into the read
// buffer once the packet is handled.
func TestPropertyListsNotKept(t *testing.T) {
	var many []byte
	for range 100_000 {
		many = append(many, PropUserProperty, 0, 0, 0, 0)
	}
	p := NewParser(&rec{})
	p.MaxPacket = 1 << 20
	if err := p.Parse(connect5(props5())); err != nil {
		t.Fatal(err)
	}
	pkts := [][]byte{
		packet(PUBLISH<<4, str("a/b"), props5(many...), []byte("x")),
		packet(SUBSCRIBE<<4|2, []byte{0, 1}, props5(many...), str("a/+"), []byte{0}),
		packet(UNSUBSCRIBE<<4|2, []byte{0, 2}, props5(many...), str("a/+")),
	}
	for i, pkt := range pkts {
		if err := p.Parse(pkt); err != nil {
			t.Fatal(err)
		}
		if n := max(cap(p.pub.Props.User), cap(p.properties().User)); n > keptListCap {
			t.Fatalf("packet %d: the parser keeps a list of %d user properties", i, n)
		}
		if len(p.props.User) != 0 {
			t.Fatalf("packet %d: the parser keeps %d user properties after the packet", i, len(p.props.User))
		}
	}
}

package codec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	ncodec "github.com/evnats/evnats/codec"
)

// rec records packets as canonical strings.
type rec struct{ ops []string }

func (r *rec) MQTTConnect(c *Connect) error {
	r.ops = append(r.ops, fmt.Sprintf("CONNECT %s/%d clean=%v ka=%d id=%q will=%v/%d/%v %q=%q user=%q pass=%q",
		c.ProtocolName, c.Level, c.CleanSession, c.KeepAlive, c.ClientID, c.WillFlag, c.WillQoS, c.WillRetain,
		c.WillTopic, c.WillMessage, c.Username, c.Password)+propString(&c.Props)+propString(&c.WillProps))
	return nil
}
func (r *rec) MQTTPublish(p *Publish) error {
	r.ops = append(r.ops, fmt.Sprintf("PUBLISH %q q%d r=%v d=%v id=%d %q", p.Topic, p.QoS, p.Retain, p.Dup, p.PacketID, p.Payload)+propString(&p.Props))
	return nil
}
func (r *rec) MQTTAck(kind byte, id uint16, reason byte) error {
	if reason != 0 {
		r.ops = append(r.ops, fmt.Sprintf("ACK %d %d reason=%#x", kind, id, reason))
		return nil
	}
	r.ops = append(r.ops, fmt.Sprintf("ACK %d %d", kind, id))
	return nil
}
func (r *rec) MQTTSubscribe(id uint16, subs []Subscription) error {
	s := fmt.Sprintf("SUBSCRIBE %d", id)
	for _, x := range subs {
		s += fmt.Sprintf(" %s:%d", x.Filter, x.QoS)
		if x.NoLocal || x.RetainAsPublished || x.RetainHandling != 0 || x.SubID != 0 {
			s += fmt.Sprintf("(nl=%v rap=%v rh=%d id=%d)", x.NoLocal, x.RetainAsPublished, x.RetainHandling, x.SubID)
		}
	}
	r.ops = append(r.ops, s)
	return nil
}
func (r *rec) MQTTUnsubscribe(id uint16, f [][]byte) error {
	r.ops = append(r.ops, fmt.Sprintf("UNSUBSCRIBE %d %s", id, bytes.Join(f, []byte(","))))
	return nil
}
func (r *rec) MQTTPingreq() error { r.ops = append(r.ops, "PINGREQ"); return nil }
func (r *rec) MQTTDisconnect(d *Disconnect) error {
	if d.Reason != 0 || d.Props.Present != 0 {
		r.ops = append(r.ops, fmt.Sprintf("DISCONNECT reason=%#x%s", d.Reason, propString(&d.Props)))
		return nil
	}
	r.ops = append(r.ops, "DISCONNECT")
	return nil
}
func (r *rec) MQTTAuth(a *Auth) error {
	r.ops = append(r.ops, fmt.Sprintf("AUTH reason=%#x%s", a.Reason, propString(&a.Props)))
	return nil
}

// propString lists the present properties, " {id=value ...}", or "".
func propString(p *Properties) string {
	if p.Present == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" {")
	for id := byte(1); id < byte(len(propTable)); id++ {
		if !p.Has(id) {
			continue
		}
		fmt.Fprintf(&b, " %#x=", id)
		switch id {
		case PropUserProperty:
			for _, u := range p.User {
				fmt.Fprintf(&b, "%s:%s;", u.Key, u.Value)
			}
			continue
		case PropSubscriptionID:
			fmt.Fprint(&b, p.SubIDs)
			continue
		}
		switch propTable[id].typ {
		case tByte:
			fmt.Fprint(&b, p.byteOf(id))
		case tU16:
			fmt.Fprint(&b, p.u16Of(id))
		case tU32:
			fmt.Fprint(&b, p.u32Of(id))
		default:
			fmt.Fprintf(&b, "%q", p.bytesOf(id))
		}
	}
	b.WriteString(" }")
	return b.String()
}

func str(s string) []byte { return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...) }

func packet(first byte, body ...[]byte) []byte {
	b := bytes.Join(body, nil)
	return append(AppendRemainingLength([]byte{first}, len(b)), b...)
}

func connectPacket() []byte {
	flags := byte(0x02 | 0x04 | 1<<3 | 0x80 | 0x40) // clean, will q1, user, pass
	return packet(CONNECT<<4, str("MQTT"), []byte{4, flags, 0, 60}, str("dev-1"), str("dev/status"), str("gone"), str("alice"), str("pw"))
}

func stream() []byte {
	big := strings.Repeat("x", 300) // a two-byte remaining length
	return bytes.Join([][]byte{
		connectPacket(),
		packet(PUBLISH<<4, str("a/b"), []byte("hello")),
		packet(PUBLISH<<4|1<<1|1, str("a/c"), []byte{0, 7}, []byte(big)),
		packet(PUBACK<<4, []byte{0, 7}), packet(PUBREL<<4|2, []byte{0, 8}),
		packet(SUBSCRIBE<<4|2, []byte{0, 9}, str("a/+"), []byte{1}, str("b/#"), []byte{2}),
		packet(UNSUBSCRIBE<<4|2, []byte{0, 10}, str("a/+")),
		packet(PINGREQ << 4), packet(DISCONNECT << 4),
	}, nil)
}

var want = []string{
	`CONNECT MQTT/4 clean=true ka=60 id="dev-1" will=true/1/false "dev/status"="gone" user="alice" pass="pw"`,
	`PUBLISH "a/b" q0 r=false d=false id=0 "hello"`,
	`PUBLISH "a/c" q1 r=true d=false id=7 "` + strings.Repeat("x", 300) + `"`,
	"ACK 4 7", "ACK 6 8", "SUBSCRIBE 9 a/+:1 b/#:2", "UNSUBSCRIBE 10 a/+", "PINGREQ", "DISCONNECT",
}

func TestParseEverySplit(t *testing.T) {
	b := stream()
	for i := 0; i <= len(b); i++ {
		r := &rec{}
		p := NewParser(r)
		if err := p.Parse(b[:i]); err != nil {
			t.Fatalf("split %d: %v", i, err)
		}
		if err := p.Parse(b[i:]); err != nil {
			t.Fatalf("split %d: %v", i, err)
		}
		if strings.Join(r.ops, "\n") != strings.Join(want, "\n") {
			t.Fatalf("split %d:\n%s", i, strings.Join(r.ops, "\n"))
		}
	}
}

func TestMalformed(t *testing.T) {
	conn := connectPacket()
	cases := []struct {
		name string
		in   []byte
		err  error
	}{
		{"publish before connect", packet(PUBLISH<<4, str("a"), nil), ErrFirstPacket},
		{"bad remaining length", append(conn, PUBLISH<<4, 0xff, 0xff, 0xff, 0xff, 0x01), ErrRemainingLength},
		{"bad protocol name", packet(CONNECT<<4, str("HTTP"), []byte{4, 2, 0, 0}, str("x")), ErrProtocolName},
		{"reserved connect flag", packet(CONNECT<<4, str("MQTT"), []byte{4, 3, 0, 0}, str("x")), ErrConnectFlags},
		{"password without user", packet(CONNECT<<4, str("MQTT"), []byte{4, 0x42, 0, 0}, str("x"), str("p")), ErrConnectFlags},
		{"connect flags nibble", packet(CONNECT<<4|1, str("MQTT"), []byte{4, 2, 0, 0}, str("x")), ErrFlags},
		{"second connect", append(conn, conn...), ErrSecondConnect},
		{"qos 3", append(conn, packet(PUBLISH<<4|3<<1, str("a"), []byte{0, 1})...), ErrQoS},
		{"wildcard publish", append(conn, packet(PUBLISH<<4, str("a/+"))...), ErrTopic},
		{"packet id 0", append(conn, packet(PUBLISH<<4|1<<1, str("a"), []byte{0, 0})...), ErrPacketID},
		{"subscribe flags", append(conn, packet(SUBSCRIBE<<4, []byte{0, 1}, str("a"), []byte{0})...), ErrFlags},
		{"bad filter", append(conn, packet(SUBSCRIBE<<4|2, []byte{0, 1}, str("a/#/b"), []byte{0})...), ErrTopic},
		{"empty subscribe", append(conn, packet(SUBSCRIBE<<4|2, []byte{0, 1})...), ErrEmptySubscribe},
		{"truncated field", append(conn, packet(SUBSCRIBE<<4|2, []byte{0, 1, 0, 9, 'a'})...), ErrTruncated},
		{"server packet", append(conn, packet(CONNACK<<4, []byte{0, 0})...), ErrPacketType},
		{"pubrel flags", append(conn, packet(PUBREL<<4, []byte{0, 1})...), ErrFlags},
	}
	for _, c := range cases {
		err := NewParser(&rec{}).Parse(c.in)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: got %v want %v", c.name, err, c.err)
		}
	}
	p := NewParser(&rec{})
	p.MaxPacket = 100
	if err := p.Parse(append(conn, packet(PUBLISH<<4, str("a"), make([]byte, 200))...)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("max packet: %v", err)
	}
}

func TestEncoders(t *testing.T) {
	r := &rec{}
	p := NewParser(r)
	p.Parse(connectPacket())
	out := AppendPublish(nil, []byte("t/1"), []byte("data"), 1, true, false, 5)
	out = AppendAck(out, PUBREL, 6)
	// A broker's PUBLISH decodes as the same PUBLISH.
	if err := p.Parse(out); err != nil {
		t.Fatal(err)
	}
	if r.ops[1] != `PUBLISH "t/1" q1 r=true d=false id=5 "data"` || r.ops[2] != "ACK 6 6" {
		t.Fatalf("%q", r.ops)
	}
	if got := AppendConnack(nil, true, Accepted); !bytes.Equal(got, []byte{0x20, 2, 1, 0}) {
		t.Fatalf("connack %x", got)
	}
	if got := AppendSuback(nil, 9, []byte{1, SubackFailure}); !bytes.Equal(got, []byte{0x90, 4, 0, 9, 1, 0x80}) {
		t.Fatalf("suback %x", got)
	}
	if got := AppendRemainingLength(nil, 321); !bytes.Equal(got, []byte{0xc1, 0x02}) {
		t.Fatalf("remaining length %x", got)
	}
}

func FuzzParser(f *testing.F) {
	f.Add(stream(), 5)
	f.Add(append(connectPacket(), 0x30, 0xff, 0xff, 0xff, 0x7f), 3)
	f.Add([]byte{0x10, 0x00}, 1)
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
		if (errW == nil) != (errP == nil) {
			t.Fatalf("whole %v split %v", errW, errP)
		}
		if errW == nil && strings.Join(whole.ops, "\n") != strings.Join(parts.ops, "\n") {
			t.Fatalf("ops differ")
		}
	})
}

// TestParserReleasesLargePacket: a large PUBLISH spanning reads grows the
// parser's buffer; once it is handled the parser keeps neither the buffer
// nor references into it.
func TestParserReleasesLargePacket(t *testing.T) {
	r := &rec{}
	p := NewParser(r)
	conn := append(lstr(nil, "MQTT"), 4, 2, 0, 60)
	conn = lstr(conn, "id")
	payload := bytes.Repeat([]byte("x"), 512<<10)
	in := mkPacket(CONNECT<<4, conn)
	in = append(in, mkPacket(PUBLISH<<4, append(lstr(nil, "t"), payload...))...)
	in = append(in, PINGREQ<<4, 0, PINGREQ<<4) // and half of one more
	for len(in) > 0 {
		n := min(len(in), 16<<10)
		if err := p.Parse(in[:n]); err != nil {
			t.Fatal(err)
		}
		in = in[n:]
	}
	if len(r.ops) != 3 {
		t.Fatalf("ops %d, want CONNECT, PUBLISH, PINGREQ", len(r.ops))
	}
	if cap(p.buf) > 64<<10 || len(p.buf) != 1 {
		t.Fatalf("parser keeps buf len %d cap %d; want the 1 pending byte in a small buffer", len(p.buf), cap(p.buf))
	}
	if p.pub.Payload != nil || p.pub.Topic != nil { // CONNECT's struct went back to its pool, cleared
		t.Fatal("parser still references the last packets")
	}
	if err := p.Parse([]byte{0}); err != nil || len(r.ops) != 4 {
		t.Fatalf("the split PINGREQ: err %v, ops %d", err, len(r.ops))
	}
}

func lstr(b []byte, s string) []byte { return append(append(b, byte(len(s)>>8), byte(len(s))), s...) }

func mkPacket(first byte, body []byte) []byte {
	return append(AppendRemainingLength([]byte{first}, len(body)), body...)
}

// suspender suspends at CONNECT, as the broker does while it checks a
// bcrypt password off its event loop.
type suspender struct{ rec }

func (s *suspender) MQTTConnect(c *Connect) error {
	s.rec.MQTTConnect(c)
	return ncodec.ErrSuspend
}

func TestParseSuspend(t *testing.T) {
	h := &suspender{}
	p := NewParser(h)
	conn := append(lstr(nil, "MQTT"), 4, 2, 0, 60)
	conn = lstr(conn, "id")
	in := mkPacket(CONNECT<<4, conn)
	in = append(in, mkPacket(PUBLISH<<4, append(lstr(nil, "t"), "one"...))...)
	in = append(in, PINGREQ<<4)
	if err := p.Parse(in); err != ncodec.ErrSuspend {
		t.Fatalf("Parse = %v, want ErrSuspend", err)
	}
	if err := p.Parse([]byte{0}); err != nil || len(h.ops) != 1 {
		t.Fatalf("Parse while suspended: %v, ops %q", err, h.ops)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if len(h.ops) != 3 || !strings.HasPrefix(h.ops[1], `PUBLISH "t"`) || h.ops[2] != "PINGREQ" {
		t.Fatalf("ops after Resume: %q", h.ops)
	}
	if err := p.Parse([]byte{PINGREQ << 4, 0}); err != nil || len(h.ops) != 4 {
		t.Fatalf("after Resume: %v, ops %q", err, h.ops)
	}

	p = NewParser(h) // held input is bounded
	p.MaxPacket = 100
	if err := p.Parse(mkPacket(CONNECT<<4, conn)); err != ncodec.ErrSuspend {
		t.Fatal(err)
	}
	if err := p.Parse(make([]byte, 200)); err != ErrTooLarge {
		t.Fatalf("Parse past the bound = %v, want ErrTooLarge", err)
	}
}

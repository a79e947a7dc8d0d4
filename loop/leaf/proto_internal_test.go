package leaf

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAppendExactBytes: what the leaf writes, byte for byte, as
// nats-server's leaf parser reads it (processLeafMsgArgs,
// processLeafHeaderMsgArgs, processLeafSub).
func TestAppendExactBytes(t *testing.T) {
	for _, c := range []struct {
		got  []byte
		want string
	}{
		{appendSub(nil, "foo.>", "", 0), "LS+ foo.>\r\n"},
		{appendSub(nil, "foo", "q", 3), "LS+ foo q 3\r\n"},
		{appendUnsub(nil, "foo", ""), "LS- foo\r\n"},
		{appendUnsub(nil, "foo", "q"), "LS- foo q\r\n"},
		{appendMsg(nil, []byte("s"), nil, -1, []byte("hi"), nil), "LMSG s 2\r\nhi\r\n"},
		{appendMsg(nil, []byte("s"), []byte("r"), -1, []byte("hi"), nil), "LMSG s r 2\r\nhi\r\n"},
		{appendMsg(nil, []byte("s"), []byte("r"), -1, []byte("hi"), []string{"q1", "q2"}), "LMSG s + r q1 q2 2\r\nhi\r\n"},
		{appendMsg(nil, []byte("s"), nil, -1, nil, []string{"q"}), "LMSG s | q 0\r\n\r\n"},
		{appendMsg(nil, []byte("s"), nil, 12, []byte("NATS/1.0\r\n\r\nhi"), nil), "HMSG s 12 14\r\nNATS/1.0\r\n\r\nhi\r\n"},
		{appendMsg(nil, []byte("s"), []byte("r"), 12, []byte("NATS/1.0\r\n\r\n"), []string{"q"}), "HMSG s + r q 12 12\r\nNATS/1.0\r\n\r\n\r\n"},
	} {
		if string(c.got) != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

// TestParseMsgArgs: every form the hub sends, and what must be refused.
func TestParseMsgArgs(t *testing.T) {
	type res struct {
		subject, reply string
		queues         string
		hdr, size      int
	}
	parse := func(line string, hdr bool) (res, error) {
		m, err := parseMsgArgs(splitArgs([]byte(line), nil), hdr)
		return res{string(m.subject), string(m.reply), string(bytes.Join(m.queues, []byte(","))), m.hdr, m.size}, err
	}
	for _, c := range []struct {
		line string
		hdr  bool
		want res
	}{
		{"foo 5\r\n", false, res{"foo", "", "", -1, 5}},
		{"foo bar 5", false, res{"foo", "bar", "", -1, 5}},
		{"foo + bar q1 q2 5", false, res{"foo", "bar", "q1,q2", -1, 5}},
		{"foo | q1 5", false, res{"foo", "", "q1", -1, 5}},
		{"foo\t3 5", true, res{"foo", "", "", 3, 5}},
		{"foo r 3 5", true, res{"foo", "r", "", 3, 5}},
		{"foo + r q 3 5", true, res{"foo", "r", "q", 3, 5}},
		{"foo | q 0 5", true, res{"foo", "", "q", 0, 5}},
	} {
		got, err := parse(c.line, c.hdr)
		if err != nil || got != c.want {
			t.Errorf("%q: got %+v %v, want %+v", c.line, got, err, c.want)
		}
	}
	for _, c := range []struct {
		line string
		hdr  bool
	}{
		{"", false}, {"foo", false}, {"foo -1", false}, {"foo x", false},
		{"foo a b 5", false}, {"foo + r 5", false}, {"foo 99999999999", false},
		{fmt.Sprintf("foo %d", maxMsgSize+1), false},
		{"foo 5", true}, {"foo 6 5", true}, {"foo x 5", true},
	} {
		if _, err := parse(c.line, c.hdr); err == nil {
			t.Errorf("%q (hdr %v) accepted", c.line, c.hdr)
		}
	}
}

// FuzzParseMsgArgs: no control line makes the parser panic or announce a
// size it should not.
func FuzzParseMsgArgs(f *testing.F) {
	f.Add([]byte("foo + bar q1 q2 3 5"), true)
	f.Add([]byte("foo | q 5"), false)
	f.Fuzz(func(t *testing.T, line []byte, hdr bool) {
		m, err := parseMsgArgs(splitArgs(line, nil), hdr)
		if err == nil && (m.size < 0 || m.size > maxMsgSize || m.hdr > m.size) {
			t.Fatalf("%q: %+v", line, m)
		}
	})
}

package codec

import (
	"fmt"
	"strings"
	"testing"
)

// recorder writes every operation it receives as one canonical line.
type recorder struct{ ops []string }

func (r *recorder) ProcessConnect(arg []byte) error {
	r.ops = append(r.ops, "CONNECT "+string(arg))
	return nil
}
func (r *recorder) ProcessPub(subject, reply []byte, hdrLen int, msg []byte) error {
	r.ops = append(r.ops, fmt.Sprintf("PUB %s|%s|%d|%q", subject, reply, hdrLen, msg))
	return nil
}
func (r *recorder) ProcessSub(subject, queue, sid []byte) error {
	r.ops = append(r.ops, fmt.Sprintf("SUB %s|%s|%s", subject, queue, sid))
	return nil
}
func (r *recorder) ProcessUnsub(sid []byte, max int) error {
	r.ops = append(r.ops, fmt.Sprintf("UNSUB %s|%d", sid, max))
	return nil
}
func (r *recorder) ProcessPing() error { r.ops = append(r.ops, "PING"); return nil }
func (r *recorder) ProcessPong() error { r.ops = append(r.ops, "PONG"); return nil }

const stream = "CONNECT {\"verbose\":false}\r\n" +
	"pub foo 5\r\nhello\r\n" +
	"PUB foo.bar  _INBOX.1\t3\r\nabc\r\n" +
	"HPUB h 12 14\r\nNATS/1.0\r\n\r\nhi\r\n" +
	"HPUB h r 12 12\r\nNATS/1.0\r\n\r\n\r\n" +
	"SUB foo 1\r\nsub foo q 2\r\nUNSUB 1\r\nunsub 2 10\r\n" +
	"PING\r\nPONG\r\nPUB empty 0\r\n\r\n"

var want = []string{
	`CONNECT {"verbose":false}`,
	`PUB foo||-1|"hello"`,
	`PUB foo.bar|_INBOX.1|-1|"abc"`,
	`PUB h||12|"NATS/1.0\r\n\r\nhi"`,
	`PUB h|r|12|"NATS/1.0\r\n\r\n"`,
	`SUB foo||1`, `SUB foo|q|2`, `UNSUB 1|0`, `UNSUB 2|10`,
	`PING`, `PONG`, `PUB empty||-1|""`,
}

func TestParseWhole(t *testing.T) {
	r := &recorder{}
	if err := NewParser(r).Parse([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	assertOps(t, r.ops, want)
}

// TestParseEverySplit feeds the stream in two and three pieces at every offset:
// a resumable parser must give the same operations however reads fall.
func TestParseEverySplit(t *testing.T) {
	b := []byte(stream)
	for i := 0; i <= len(b); i++ {
		for j := i; j <= len(b); j += 7 {
			r := &recorder{}
			p := NewParser(r)
			for _, part := range [][]byte{b[:i], b[i:j], b[j:]} {
				if err := p.Parse(part); err != nil {
					t.Fatalf("split %d/%d: %v", i, j, err)
				}
			}
			assertOps(t, r.ops, want)
		}
	}
}

func TestParseByteAtATime(t *testing.T) {
	r := &recorder{}
	p := NewParser(r)
	for i := 0; i < len(stream); i++ {
		if err := p.Parse([]byte{stream[i]}); err != nil {
			t.Fatalf("byte %d: %v", i, err)
		}
	}
	assertOps(t, r.ops, want)
}

func TestParseErrors(t *testing.T) {
	long := "PUB " + strings.Repeat("a", 5000) + " 1\r\n"
	cases := []struct{ in, err string }{
		{"FOO bar\r\n", "Unknown Protocol Operation"},
		{"\x00\x01\x02junk", "Unknown Protocol Operation"},
		{long, "Maximum Control Line Exceeded"},
		{strings.Repeat("P", 5000), "Maximum Control Line Exceeded"},
		{"PUB foo 2000000\r\n", "Maximum Payload Violation"},
		{"PUB foo x\r\n", `Invalid PUB Size: "x"`},
		{"PUB foo -1\r\n", `Invalid PUB Size: "-1"`},
		{"PUB foo 99999999999\r\n", `Invalid PUB Size`},
		{"PUB foo\r\n", "Invalid PUB Arguments"},
		{"PUB a b c d e\r\n", "Invalid PUB Arguments"},
		{"PUB foo 2\r\nabcdef\r\n", "Message Payload Size Mismatch"},
		{"HPUB foo 10 5\r\n", "Invalid HPUB Header Size"},
		{"HPUB foo 5\r\n", "Invalid HPUB Arguments"},
		{"SUB foo\r\n", "Invalid SUB Arguments"},
		{"SUB a b c d\r\n", "Invalid SUB Arguments"},
		{"UNSUB\r\n", "Invalid UNSUB Arguments"},
		{"UNSUB 1 x\r\n", `Invalid UNSUB Max: "x"`},
		{"CONNECT\r\n", "Invalid CONNECT"},
		{"PING x\r\n", "PING takes no arguments"},
	}
	for _, c := range cases {
		err := NewParser(&recorder{}).Parse([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.err) || !IsProtocolError(err) {
			t.Errorf("%q: got %v, want error containing %q", c.in, err, c.err)
		}
	}
}

func TestParseLimits(t *testing.T) {
	p := NewParser(&recorder{})
	p.MaxPayload = 10
	if err := p.Parse([]byte("PUB a 11\r\n")); err != ErrMaxPayload {
		t.Fatalf("got %v", err)
	}
	p = NewParser(&recorder{})
	p.MaxControlLine = 16
	if err := p.Parse([]byte("SUB aaaaaaaaaaaaaaaaaaaaaa 1\r\n")); err != ErrMaxControlLine {
		t.Fatalf("got %v", err)
	}
}

func assertOps(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ops differ\ngot:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

type nopHandler struct{}

func (nopHandler) ProcessConnect([]byte) error                  { return nil }
func (nopHandler) ProcessPub([]byte, []byte, int, []byte) error { return nil }
func (nopHandler) ProcessSub([]byte, []byte, []byte) error      { return nil }
func (nopHandler) ProcessUnsub([]byte, int) error               { return nil }
func (nopHandler) ProcessPing() error                           { return nil }
func (nopHandler) ProcessPong() error                           { return nil }

func TestParseAllocs(t *testing.T) {
	p := NewParser(nopHandler{})
	in := []byte("PUB foo.bar 16\r\n0123456789abcdef\r\nHPUB h r 12 14\r\nNATS/1.0\r\n\r\nhi\r\n")
	split := []byte("PUB foo.bar _INBOX.abc 16\r\n0123456789abcdef\r\n")
	n := testing.AllocsPerRun(1000, func() {
		_ = p.Parse(in)
		_ = p.Parse(split[:20])
		_ = p.Parse(split[20:])
	})
	if n != 0 {
		t.Fatalf("parser allocates %v per run, want 0", n)
	}
}

func FuzzParser(f *testing.F) {
	f.Add([]byte(stream), 7)
	f.Add([]byte("PUB foo 2\r\nabcdef\r\n"), 3)
	f.Add([]byte("HPUB foo r 3 5\r\nabcde\r\n"), 1)
	f.Add([]byte("\x00\xff garbage"), 2)
	f.Add([]byte("UNSUB 1 99999999999999999999\r\n"), 0)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		whole := &recorder{}
		errWhole := NewParser(whole).Parse(data)
		if split < 0 {
			split = -split
		}
		split %= len(data) + 1
		parts := &recorder{}
		p := NewParser(parts)
		errParts := p.Parse(data[:split])
		if errParts == nil {
			errParts = p.Parse(data[split:])
		}
		// However the bytes are split, the same operations come out, and
		// either both parses fail or both succeed (early junk detection may
		// report a different error text for a split line).
		if (errWhole == nil) != (errParts == nil) {
			t.Fatalf("whole err %v, split %d err %v", errWhole, split, errParts)
		}
		if errWhole == nil {
			assertOps(t, parts.ops, whole.ops)
		}
	})
}

// suspender suspends the parse at every CONNECT, as the server does while
// it checks a bcrypt password off the loop.
type suspender struct{ recorder }

func (s *suspender) ProcessConnect(arg []byte) error {
	s.recorder.ProcessConnect(arg)
	return ErrSuspend
}

func TestParseSuspend(t *testing.T) {
	h := &suspender{}
	p := NewParser(h)
	err := p.Parse([]byte("CONNECT {}\r\nSUB a 1\r\nPUB a 5\r\nhe"))
	if err != ErrSuspend || !p.Suspended() {
		t.Fatalf("Parse = %v, suspended %v; want ErrSuspend", err, p.Suspended())
	}
	if err := p.Parse([]byte("llo\r\nPING\r\nCONNECT {\"x\":1}\r\nPONG\r\n")); err != nil {
		t.Fatal(err)
	}
	if len(h.ops) != 1 {
		t.Fatalf("ops while suspended: %q", h.ops)
	}
	if err := p.Resume(); err != ErrSuspend { // the second CONNECT suspends again
		t.Fatalf("Resume = %v, want ErrSuspend", err)
	}
	if err := p.Parse([]byte("UNSUB 1\r\n")); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	want := []string{"CONNECT {}", "SUB a||1", `PUB a||-1|"hello"`, "PING", `CONNECT {"x":1}`, "PONG", "UNSUB 1|0"}
	if strings.Join(h.ops, "\n") != strings.Join(want, "\n") {
		t.Fatalf("ops\n%s\nwant\n%s", strings.Join(h.ops, "\n"), strings.Join(want, "\n"))
	}
	if err := p.Resume(); err != nil || p.Suspended() {
		t.Fatal("Resume when not suspended must do nothing")
	}

	// A client may not pile up more than one operation's worth meanwhile.
	p = NewParser(h)
	p.MaxPayload = 100
	if err := p.Parse([]byte("CONNECT {}\r\n")); err != ErrSuspend {
		t.Fatal(err)
	}
	if err := p.Parse(make([]byte, p.HeldLimit())); err != nil {
		t.Fatal(err)
	}
	if err := p.Parse([]byte("P")); err != ErrHeldInput {
		t.Fatalf("Parse past HeldLimit = %v, want ErrHeldInput", err)
	}

	// Before CONNECT is accepted (auth required), much less.
	p = NewParser(h)
	p.ConnectFirst = true
	if err := p.Parse([]byte("CONNECT {}\r\n")); err != ErrSuspend {
		t.Fatal(err)
	}
	if err := p.Parse(make([]byte, HeldBeforeConnect+1)); err != ErrHeldInput {
		t.Fatalf("Parse past HeldBeforeConnect = %v, want ErrHeldInput", err)
	}
}

// TestParseConnectFirst checks that with ConnectFirst a parser refuses any
// operation but CONNECT at its first byte, holding none of its payload, and
// takes everything once the handler clears it.
func TestParseConnectFirst(t *testing.T) {
	for _, in := range []string{"P", "PUB x 1048576\r\n", "PING\r\n", "\r\n", "sub x 1\r\n", "HPUB"} {
		p := NewParser(&recorder{})
		p.ConnectFirst = true
		if err := p.Parse([]byte(in)); err != ErrAuthViolation {
			t.Fatalf("%q: got %v, want ErrAuthViolation", in, err)
		}
		if p.Buffered() != 0 {
			t.Fatalf("%q: %d bytes buffered", in, p.Buffered())
		}
	}
	r := &recorder{}
	p := NewParser(r)
	p.ConnectFirst = true
	for _, b := range []byte("conn") { // split: only the first byte of an op is checked
		if err := p.Parse([]byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Parse([]byte("ect {}\r\n")); err != nil {
		t.Fatal(err)
	}
	p.ConnectFirst = false // what the handler does on an accepted CONNECT
	if err := p.Parse([]byte("PING\r\n")); err != nil || len(r.ops) != 2 {
		t.Fatalf("err %v, ops %q", err, r.ops)
	}
}

// TestSplitArgsMatchesNaive checks the word-at-a-time splitter against a
// byte-at-a-time one on separators at every offset.
func TestSplitArgsMatchesNaive(t *testing.T) {
	naive := func(line []byte) [][]byte {
		var out [][]byte
		start := -1
		for i, b := range line {
			if b == ' ' || b == '\t' {
				if start >= 0 {
					out = append(out, line[start:i])
					start = -1
				}
			} else if start < 0 {
				start = i
			}
		}
		if start >= 0 {
			out = append(out, line[start:])
		}
		return out
	}
	alphabet := []byte("a. \t\x80\xff0")
	rng := uint64(1)
	for iter := 0; iter < 20000; iter++ {
		line := make([]byte, iter%40)
		for i := range line {
			rng = rng*6364136223846793005 + 1442695040888963407
			line[i] = alphabet[(rng>>33)%uint64(len(alphabet))]
		}
		var args [maxArgs][]byte
		n := splitArgs(line, &args)
		want := naive(line)
		if len(want) > maxArgs {
			if n != maxArgs+1 {
				t.Fatalf("%q: n=%d, want %d", line, n, maxArgs+1)
			}
			continue
		}
		if n != len(want) {
			t.Fatalf("%q: n=%d, want %d", line, n, len(want))
		}
		for i := range want {
			if string(args[i]) != string(want[i]) {
				t.Fatalf("%q: arg %d = %q, want %q", line, i, args[i], want[i])
			}
		}
	}
}

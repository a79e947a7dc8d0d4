package codec

import (
	"bytes"
	"fmt"
	"testing"
)

func TestReuse(t *testing.T) {
	small := make([]byte, 10, RetainLimit)
	if got := Reuse(small); got == nil || len(got) != 0 || cap(got) != RetainLimit {
		t.Fatalf("Reuse kept len %d cap %d of a buffer at the limit; want it emptied and kept", len(got), cap(got))
	}
	if got := Reuse(make([]byte, 5, RetainLimit+1)); got != nil {
		t.Fatalf("Reuse kept a buffer of cap %d; want nil", cap(got))
	}
	if got := Reuse(nil); got != nil {
		t.Fatal("Reuse(nil) != nil")
	}
}

// TestParserReleasesLargePayload: a PUB that spans reads grows the payload
// buffer; once it is delivered the parser must not keep that capacity.
func TestParserReleasesLargePayload(t *testing.T) {
	r := &recorder{}
	p := NewParser(r)
	payload := bytes.Repeat([]byte("x"), 512<<10)
	in := append(fmt.Appendf(nil, "PUB big %d\r\n", len(payload)), payload...)
	in = append(in, "\r\nPING\r\n"...)
	for len(in) > 0 { // reads of 16 KB, as a socket delivers
		n := min(len(in), 16<<10)
		if err := p.Parse(in[:n]); err != nil {
			t.Fatal(err)
		}
		in = in[n:]
	}
	if len(r.ops) != 2 || r.ops[1] != "PING" {
		t.Fatalf("ops %d, want PUB then PING", len(r.ops))
	}
	if cap(p.msg) > RetainLimit || cap(p.pending) > RetainLimit {
		t.Fatalf("parser keeps msg cap %d, pending cap %d after the message; want <= %d", cap(p.msg), cap(p.pending), RetainLimit)
	}
	// a small message spanning reads keeps its buffer for the next one
	_ = p.Parse([]byte("PUB s 5\r\nab"))
	_ = p.Parse([]byte("cde\r\n"))
	if cap(p.msg) == 0 {
		t.Fatal("small payload buffer not kept for reuse")
	}
}

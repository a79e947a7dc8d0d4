package jetstream

import "testing"

// TestParseFastReply: the reply subject's tokens read as nats-server
// reads them; a flow that is no positive number is 10, one past 16 bits
// the most there is.
func TestParseFastReply(t *testing.T) {
	for _, tc := range []struct {
		reply string
		ok    bool
		want  fastReply
	}{
		{"_INBOX.x.id.500.fail.1.0.$FI", true, fastReply{id: "id", flow: 500, seq: 1, op: fastOpStart}},
		{"p.id.20.ok.7.1.$FI", true, fastReply{id: "id", flow: 20, gapOK: true, seq: 7, op: fastOpAppend}},
		{".id.0.ok.2.2.$FI", true, fastReply{id: "id", flow: 10, gapOK: true, seq: 2, op: fastOpCommit}},
		{"p.id.+5.fail.3.3.$FI", true, fastReply{id: "id", flow: 10, seq: 3, op: fastOpCommitEOB}},
		{"p.id.70000.fail.1.4.$FI", true, fastReply{id: "id", flow: 65535, seq: 1, op: fastOpPing}},
		{"p.id.99999999999999999999.fail.1.0.$FI", true, fastReply{id: "id", flow: 65535, seq: 1}},
		{"id.10.fail.1.0.$FI", false, fastReply{}},    // no token before the id
		{"p.id.10.fail.1.5.$FI", false, fastReply{}},  // no such op
		{"p.id.10.fail.1.+1.$FI", false, fastReply{}}, // not digits
		{"p.id.10.fail.0.1.$FI", false, fastReply{}},  // sequences start at 1
		{"p.id.10.fail.1.1.$FI", false, fastReply{}},  // append at 1
		{"p.id.10.fail.2.0.$FI", false, fastReply{}},  // start past 1
		{"p.id.10.fail.1.3.$FI", false, fastReply{}},  // end of nothing
		{"p.id.10.fail.18446744073709551615.1.$FI", false, fastReply{}},
		{"p.id.10.Fail.2.1.$FI", false, fastReply{}},
	} {
		got, ok := parseFastReply(tc.reply)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.reply, got, ok, tc.want, tc.ok)
		}
	}
}

// TestParseFastReplyAllocs: reading a fast batch's reply subject
// allocates nothing (it runs for every message of a batch).
func TestParseFastReplyAllocs(t *testing.T) {
	reply := "_INBOX.abcdef.batch-1.100.ok.42.1.$FI"
	if n := testing.AllocsPerRun(100, func() { parseFastReply(reply) }); n != 0 {
		t.Fatalf("%v allocations per parse", n)
	}
}

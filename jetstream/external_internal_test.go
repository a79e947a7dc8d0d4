package jetstream

import "testing"

func TestParseAckReply(t *testing.T) {
	for _, tc := range []struct {
		reply      string
		sseq, dseq uint64
		ts         int64
		pending    uint64
		ok         bool
	}{
		{"$JS.ACK.S.c.1.7.3.1700000000000000000.9", 7, 3, 1700000000000000000, 9, true},
		{"$JS.ACK.edge.ACCHASH.S.c.1.7.3.1700000000000000000.9.tok", 7, 3, 1700000000000000000, 9, true},
		{"$JS.ACK.S.c.1.0.3.1.9", 0, 0, 0, 0, false},
		{"$JS.ACK.S.c.1.18446744073709551615.3.1.9", 0, 0, 0, 0, false},
		{"$JS.ACK.S.c.1.x.3.1.9", 0, 0, 0, 0, false},
		{"$JS.ACK.S.c.1.7", 0, 0, 0, 0, false},
		{"_INBOX.x", 0, 0, 0, 0, false},
	} {
		sseq, dseq, ts, pending, ok := parseAckReply(tc.reply)
		if ok != tc.ok || ok && (sseq != tc.sseq || dseq != tc.dseq || ts != tc.ts || pending != tc.pending) {
			t.Errorf("%q: %d %d %d %d %v", tc.reply, sseq, dseq, ts, pending, ok)
		}
	}
}

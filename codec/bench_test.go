package codec

import "testing"

func benchParse(b *testing.B, chunks ...[]byte) {
	p := NewParser(nopHandler{})
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range chunks {
			if err := p.Parse(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkParsePing(b *testing.B) { benchParse(b, []byte("PING\r\n")) }

func BenchmarkParsePub(b *testing.B) {
	benchParse(b, []byte("PUB foo.bar 16\r\n0123456789abcdef\r\n"))
}

func BenchmarkParseHPub(b *testing.B) {
	benchParse(b, []byte("HPUB foo.bar reply 18 34\r\nNATS/1.0\r\nA: B\r\n\r\n0123456789abcdef\r\n"))
}

func BenchmarkParsePubSplit(b *testing.B) {
	m := []byte("PUB foo.bar _INBOX.x 16\r\n0123456789abcdef\r\n")
	benchParse(b, m[:10], m[10:30], m[30:])
}

func BenchmarkAppendMsg(b *testing.B) {
	buf := make([]byte, 0, 256)
	subj, sid, payload := []byte("foo.bar"), []byte("12"), make([]byte, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMsg(buf[:0], subj, sid, nil, payload)
	}
}

// BenchmarkParsePubStream parses one 64 KiB read of back-to-back 128-byte
// PUBs, as a publisher's socket delivers them (per message: ns/op / 400).
func BenchmarkParsePubStream(b *testing.B) {
	var buf []byte
	payload := make([]byte, 128)
	for len(buf) < 64<<10-160 {
		buf = append(buf, "PUB bench.pubsub.subject 128\r\n"...)
		buf = append(buf, payload...)
		buf = append(buf, "\r\n"...)
	}
	benchParse(b, buf)
}

package loop

import (
	"bytes"
	"testing"
)

// fuzzSink records what a decoder hands on.
type fuzzSink struct {
	data []byte
	ctl  []byte
	msgs int
}

func (s *fuzzSink) wsData(b []byte, _, final bool) bool {
	s.data = append(s.data, b...)
	if final {
		s.msgs++
	}
	return true
}

func (s *fuzzSink) wsControl(op byte, p []byte) bool {
	if len(p) > wsMaxControl {
		panic("control payload over 125 bytes")
	}
	s.ctl = append(append(s.ctl, op), p...)
	return op != wsClose
}

// decodeIn decodes in pieces of at most step bytes (the decoder unmasks
// in place, so each run gets its own copy).
func decodeIn(in []byte, step int, compress bool) (*fuzzSink, error) {
	in = bytes.Clone(in)
	d := wsDecoder{compress: compress}
	s := &fuzzSink{}
	for len(in) > 0 {
		n := min(step, len(in))
		if err := d.decode(in[:n], s); err != nil {
			return s, err
		}
		in = in[n:]
	}
	return s, nil
}

// maskedFrame is a client frame for the seeds.
func maskedFrame(b0 byte, p []byte) []byte {
	key := []byte{0x37, 0xfa, 0x21, 0x3d}
	f := wsAppendHeader(nil, b0&0x0F, b0&wsFin != 0, b0&wsRsv1 != 0, len(p))
	f[1] |= wsMask
	f = append(f, key...)
	for i, c := range p {
		f = append(f, c^key[i&3])
	}
	return f
}

// FuzzWSFrames: whatever arrives, the frame decoder does not panic, keeps
// control payloads within 125 bytes, and finds the same payload, control
// frames and error whether the input comes at once or a byte at a time.
func FuzzWSFrames(f *testing.F) {
	f.Add(maskedFrame(0x82, []byte("PING\r\n")), uint8(3), false)
	f.Add(append(maskedFrame(0x02, []byte("PUB a 5\r\nhe")), maskedFrame(0x80, []byte("llo\r\n"))...), uint8(1), false)
	f.Add(append(maskedFrame(0x89, []byte("ping")), maskedFrame(0x88, []byte{3, 232, 'b', 'y', 'e'})...), uint8(2), false)
	f.Add(maskedFrame(0x82, bytes.Repeat([]byte("x"), 300)), uint8(7), false)
	f.Add(maskedFrame(0x82, bytes.Repeat([]byte("y"), 70000)), uint8(255), false)
	f.Add(maskedFrame(0xC2, []byte{0xf2, 0x00}), uint8(1), true)
	f.Add([]byte{0x82, 0x06, 'P', 'I', 'N', 'G', '\r', '\n'}, uint8(1), false) // unmasked
	f.Add([]byte{0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, uint8(4), false)
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), uint8(5), false)
	f.Fuzz(func(t *testing.T, in []byte, step uint8, compress bool) {
		whole, errW := decodeIn(in, len(in)+1, compress)
		piece, errP := decodeIn(in, int(step%16)+1, compress)
		if (errW == nil) != (errP == nil) || (errW != nil && errW.Error() != errP.Error()) {
			t.Fatalf("errors differ: at once %v, in pieces %v", errW, errP)
		}
		if !bytes.Equal(whole.data, piece.data) || !bytes.Equal(whole.ctl, piece.ctl) || whole.msgs != piece.msgs {
			t.Fatalf("decoded differently: %d/%d data bytes, %d/%d control bytes, %d/%d messages",
				len(whole.data), len(piece.data), len(whole.ctl), len(piece.ctl), whole.msgs, piece.msgs)
		}
	})
}

// TestWSDecodeMessage: a message split over frames, with a ping between
// them, comes out whole and unmasked.
func TestWSDecodeMessage(t *testing.T) {
	in := append(maskedFrame(0x02, []byte("hello ")), maskedFrame(0x89, []byte("p"))...)
	in = append(in, maskedFrame(0x80, bytes.Repeat([]byte("w"), 1000))...)
	s, err := decodeIn(in, 5, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello " + string(bytes.Repeat([]byte("w"), 1000)); string(s.data) != want || s.msgs != 1 || string(s.ctl) != "\x09p" {
		t.Fatalf("data %q msgs %d ctl %q", s.data, s.msgs, s.ctl)
	}
}

package store

// Concurrency: pure encoding and decoding; any goroutine.

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// On-disk record layout (little endian), appended to block files:
//
//	u32 body length (everything after this field, checksum included)
//	u8  kind
//	u64 sequence
//	i64 timestamp (unix ns)
//	u16 subject length, u32 header length, u32 data length
//	subject, header, data
//	u64 xxhash64 of kind .. data
//
// A record is valid only if its length fits the file and its checksum
// matches; recovery truncates the block at the first record that is not.
const (
	recMsg     byte = 1 // a message
	recDelete  byte = 2 // tombstone: sequence removed
	recCompact byte = 3 // tombstone: every sequence below this one removed
	recMsgS2   byte = 4 // a message whose data is s2-compressed

	recFixed    = 1 + 8 + 8 + 2 + 4 + 4 // kind .. lengths
	recOverhead = 4 + recFixed + 8      // plus body length and checksum
	maxSubject  = 1<<16 - 1
)

// appendRecord encodes one record onto dst.
func appendRecord(dst []byte, kind byte, seq uint64, ts int64, subject string, hdr, data []byte) []byte {
	body := recFixed + len(subject) + len(hdr) + len(data) + 8
	dst = binary.LittleEndian.AppendUint32(dst, uint32(body))
	start := len(dst)
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(ts))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(subject)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(hdr)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(data)))
	dst = append(dst, subject...)
	dst = append(dst, hdr...)
	dst = append(dst, data...)
	return binary.LittleEndian.AppendUint64(dst, xxhash.Sum64(dst[start:]))
}

// record is a decoded record whose slices point into the decoded buffer.
type record struct {
	kind    byte
	seq     uint64
	ts      int64
	subject []byte
	hdr     []byte
	data    []byte
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded size, or n == 0 if b does not start with a complete valid record.
func decodeRecord(b []byte) (r record, n int) {
	if len(b) < 4 {
		return r, 0
	}
	body := int(binary.LittleEndian.Uint32(b))
	if body < recFixed+8 || body > len(b)-4 {
		return r, 0
	}
	rec := b[4 : 4+body]
	payload := rec[:body-8]
	if xxhash.Sum64(payload) != binary.LittleEndian.Uint64(rec[body-8:]) {
		return r, 0
	}
	r.kind = payload[0]
	r.seq = binary.LittleEndian.Uint64(payload[1:])
	r.ts = int64(binary.LittleEndian.Uint64(payload[9:]))
	sl := int(binary.LittleEndian.Uint16(payload[17:]))
	hl := int(binary.LittleEndian.Uint32(payload[19:]))
	dl := int(binary.LittleEndian.Uint32(payload[23:]))
	if recFixed+sl+hl+dl != len(payload) {
		return r, 0
	}
	p := payload[recFixed:]
	r.subject, r.hdr, r.data = p[:sl], p[sl:sl+hl], p[sl+hl:]
	return r, 4 + body
}

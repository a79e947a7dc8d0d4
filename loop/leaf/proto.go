package leaf

// The leaf-node wire protocol as nats-server 2.15 speaks it, both ways:
//
//	INFO {json}                          hub -> leaf, first and on changes
//	CONNECT {json}                       leaf -> hub (no "lang": that marks a client)
//	LS+ <subject> [<queue> <weight>]     interest, weight = members of the group
//	LS- <subject> [<queue>]              interest withdrawn
//	LMSG <subject> [reply] <size>        a message, no queue groups
//	LMSG <subject> + <reply> <q>... <size>   picked for queue groups, with reply
//	LMSG <subject> | <q>... <size>           picked for queue groups, no reply
//	HMSG ... <hdrsize> <size>            the same with headers
//	PING, PONG, -ERR '<text>'
//
// Pure functions of bytes: no connection, no lock.

import (
	"errors"
	"strconv"

	"github.com/evnats/evnats/codec"
)

// maxMsgSize bounds what a hub may announce for one message, so that a
// corrupt or hostile size cannot make the leaf allocate without limit.
const maxMsgSize = 64 << 20

var errProto = errors.New("leaf: protocol error")

// appendSub appends LS+ for subject (and queue group with its weight).
func appendSub(b []byte, subject, queue string, weight int) []byte {
	b = append(b, "LS+ "...)
	b = append(b, subject...)
	if queue != "" {
		b = append(b, ' ')
		b = append(b, queue...)
		b = append(b, ' ')
		b = strconv.AppendInt(b, int64(weight), 10)
	}
	return append(b, "\r\n"...)
}

// appendUnsub appends LS- for subject (and queue group).
func appendUnsub(b []byte, subject, queue string) []byte {
	b = append(b, "LS- "...)
	b = append(b, subject...)
	if queue != "" {
		b = append(b, ' ')
		b = append(b, queue...)
	}
	return append(b, "\r\n"...)
}

// appendMsg appends one message as LMSG, or HMSG when it has headers
// (hdrLen >= 0; msg holds headers then payload), naming the queue groups
// the hub was picked for.
func appendMsg(b []byte, subject, reply []byte, hdrLen int, msg []byte, queues []string) []byte {
	if hdrLen >= 0 {
		b = append(b, "HMSG "...)
	} else {
		b = append(b, "LMSG "...)
	}
	b = append(b, subject...)
	b = append(b, ' ')
	if len(queues) > 0 {
		if len(reply) > 0 {
			b = append(b, "+ "...)
			b = append(b, reply...)
			b = append(b, ' ')
		} else {
			b = append(b, "| "...)
		}
		for _, q := range queues {
			b = append(b, q...)
			b = append(b, ' ')
		}
	} else if len(reply) > 0 {
		b = append(b, reply...)
		b = append(b, ' ')
	}
	if hdrLen >= 0 {
		b = strconv.AppendInt(b, int64(hdrLen), 10)
		b = append(b, ' ')
	}
	b = strconv.AppendInt(b, int64(len(msg)), 10)
	b = append(b, "\r\n"...)
	b = append(b, msg...)
	return append(b, "\r\n"...)
}

// splitArgs splits a control line's arguments on blanks into args,
// reusing its array.
func splitArgs(line []byte, args [][]byte) [][]byte {
	args = args[:0]
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			if start >= 0 {
				args = append(args, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		args = append(args, line[start:])
	}
	return args
}

// msgArgs is a parsed LMSG/HMSG control line; the slices point into the
// line.
type msgArgs struct {
	subject, reply []byte
	queues         [][]byte
	hdr, size      int // hdr -1: no headers
}

// parseMsgArgs parses the arguments of LMSG (hdr false) or HMSG.
func parseMsgArgs(args [][]byte, hdr bool) (m msgArgs, err error) {
	m.hdr = -1
	nsz := 1
	if hdr {
		nsz = 2
	}
	if len(args) < 1+nsz {
		return m, errProto
	}
	m.subject = args[0]
	rest := args[1 : len(args)-nsz]
	switch {
	case len(rest) == 0:
	case len(rest) == 1:
		m.reply = rest[0]
	case len(rest[0]) == 1 && rest[0][0] == '+' && len(rest) >= 3:
		m.reply, m.queues = rest[1], rest[2:]
	case len(rest[0]) == 1 && rest[0][0] == '|':
		m.queues = rest[1:]
	default:
		return m, errProto
	}
	if m.size = codec.ParseSize(args[len(args)-1]); m.size < 0 || m.size > maxMsgSize {
		return m, errProto
	}
	if hdr {
		if m.hdr = codec.ParseSize(args[len(args)-2]); m.hdr < 0 || m.hdr > m.size {
			return m, errProto
		}
	}
	return m, nil
}

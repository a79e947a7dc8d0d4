package codec

// Concurrency: stateless appenders. The caller owns dst: for a delivery,
// the subscriber's loop, or a goroutine holding the client's outLock.

import "strconv"

// Server-to-client protocol encoders. Each appends to dst and returns the
// extended slice, so callers format straight into their outbound buffers.

var (
	crlf     = []byte("\r\n")
	PingLine = []byte("PING\r\n")
	PongLine = []byte("PONG\r\n")
	OKLine   = []byte("+OK\r\n")
	CRLF     = crlf
)

// AppendMsgHead appends the control line "MSG <subject> <sid> [reply] <size>\r\n";
// the payload and a CRLF follow it on the wire.
func AppendMsgHead(dst, subject, sid, reply []byte, size int) []byte {
	dst = append(dst, "MSG "...)
	dst = appendRoute(dst, subject, sid, reply)
	dst = strconv.AppendInt(dst, int64(size), 10)
	return append(dst, crlf...)
}

// AppendHMsgHead appends "HMSG <subject> <sid> [reply] <hdr size> <total size>\r\n";
// headers, payload and a CRLF follow it on the wire.
func AppendHMsgHead(dst, subject, sid, reply []byte, hdrLen, total int) []byte {
	dst = append(dst, "HMSG "...)
	dst = appendRoute(dst, subject, sid, reply)
	dst = strconv.AppendInt(dst, int64(hdrLen), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(total), 10)
	return append(dst, crlf...)
}

// appendRoute appends "<subject> <sid> [reply] ".
func appendRoute(dst, subject, sid, reply []byte) []byte {
	dst = append(dst, subject...)
	dst = append(dst, ' ')
	dst = append(dst, sid...)
	dst = append(dst, ' ')
	if len(reply) > 0 {
		dst = append(dst, reply...)
		dst = append(dst, ' ')
	}
	return dst
}

// AppendMsg appends a whole MSG: control line, payload, CRLF.
func AppendMsg(dst, subject, sid, reply, payload []byte) []byte {
	dst = AppendMsgHead(dst, subject, sid, reply, len(payload))
	dst = append(dst, payload...)
	return append(dst, crlf...)
}

// AppendHMsg appends a whole HMSG; msg[:hdrLen] are the headers.
func AppendHMsg(dst, subject, sid, reply []byte, hdrLen int, msg []byte) []byte {
	dst = AppendHMsgHead(dst, subject, sid, reply, hdrLen, len(msg))
	dst = append(dst, msg...)
	return append(dst, crlf...)
}

// AppendErr appends "-ERR '<msg>'\r\n".
func AppendErr(dst []byte, msg string) []byte {
	dst = append(dst, "-ERR '"...)
	dst = append(dst, msg...)
	return append(dst, "'\r\n"...)
}

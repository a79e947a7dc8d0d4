package codec

import "strconv"

// Server-to-client protocol encoders. Each appends to dst and returns the
// extended slice, so callers format straight into their outbound buffers.

var (
	crlf     = []byte("\r\n")
	PingLine = []byte("PING\r\n")
	PongLine = []byte("PONG\r\n")
	OKLine   = []byte("+OK\r\n")
)

// AppendMsg appends "MSG <subject> <sid> [reply] <size>\r\n<payload>\r\n".
func AppendMsg(dst, subject, sid, reply, payload []byte) []byte {
	dst = append(dst, "MSG "...)
	dst = append(dst, subject...)
	dst = append(dst, ' ')
	dst = append(dst, sid...)
	dst = append(dst, ' ')
	if len(reply) > 0 {
		dst = append(dst, reply...)
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(len(payload)), 10)
	dst = append(dst, crlf...)
	dst = append(dst, payload...)
	return append(dst, crlf...)
}

// AppendHMsg appends "HMSG <subject> <sid> [reply] <hdr size> <total size>\r\n"
// followed by msg (headers then payload) and CRLF. msg[:hdrLen] are the headers.
func AppendHMsg(dst, subject, sid, reply []byte, hdrLen int, msg []byte) []byte {
	dst = append(dst, "HMSG "...)
	dst = append(dst, subject...)
	dst = append(dst, ' ')
	dst = append(dst, sid...)
	dst = append(dst, ' ')
	if len(reply) > 0 {
		dst = append(dst, reply...)
		dst = append(dst, ' ')
	}
	dst = strconv.AppendInt(dst, int64(hdrLen), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(msg)), 10)
	dst = append(dst, crlf...)
	dst = append(dst, msg...)
	return append(dst, crlf...)
}

// MsgSize is the encoded size of a MSG or HMSG, for buffer sizing.
func MsgSize(subject, sid, reply []byte, hdrLen int, msg []byte) int {
	return 32 + len(subject) + len(sid) + len(reply) + len(msg)
}

// AppendErr appends "-ERR '<msg>'\r\n".
func AppendErr(dst []byte, msg string) []byte {
	dst = append(dst, "-ERR '"...)
	dst = append(dst, msg...)
	return append(dst, "'\r\n"...)
}

// AppendInfo appends "INFO <json>\r\n" for a pre-marshalled JSON object.
func AppendInfo(dst, infoJSON []byte) []byte {
	dst = append(dst, "INFO "...)
	dst = append(dst, infoJSON...)
	return append(dst, crlf...)
}

// Package codec implements the NATS client protocol: a resumable parser for
// what clients send and encoders for what the server sends back.
//
// The package is a pure, single-threaded core: it starts no goroutines, takes
// no locks and imports nothing from the rest of evnats, so it can be fuzzed and
// benchmarked on its own.
package codec

// Concurrency: a Parser belongs to one connection and is driven only by
// the goroutine that reads it (its gnet loop or goroutine-transport reader);
// handler callbacks run synchronously on that goroutine. No locks.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/bits"
)

// Default limits, matching nats-server.
const (
	DefaultMaxControlLine = 4096
	DefaultMaxPayload     = 1 << 20
	maxArgs               = 4
)

// Handler receives the operations the parser decodes. Every byte slice passed
// to a Handler is valid only until the call returns: it may point into the
// caller's read buffer or into the parser's scratch space. A Handler that
// returns an error stops the parse; the error is handed back from Parse.
type Handler interface {
	ProcessConnect(arg []byte) error
	// ProcessPub is called for PUB and HPUB. hdrLen is -1 for PUB; for HPUB,
	// msg[:hdrLen] holds the headers and msg[hdrLen:] the payload.
	ProcessPub(subject, reply []byte, hdrLen int, msg []byte) error
	ProcessSub(subject, queue, sid []byte) error
	ProcessUnsub(sid []byte, max int) error
	ProcessPing() error
	ProcessPong() error
}

// ProtocolError is a client protocol violation. Its text is what the server
// sends in -ERR before closing the connection.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return e.Msg }

// IsProtocolError reports whether err is a protocol violation from the parser.
func IsProtocolError(err error) bool {
	var pe *ProtocolError
	return errors.As(err, &pe)
}

func protoErr(msg string) error { return &ProtocolError{Msg: msg} }

// Sentinel protocol errors; their text matches nats-server's -ERR strings where
// nats-server has one, and names the problem where it closes silently.
var (
	ErrUnknownOp      = protoErr("Unknown Protocol Operation")
	ErrMaxControlLine = protoErr("Maximum Control Line Exceeded")
	ErrMaxPayload     = protoErr("Maximum Payload Violation")
	ErrBadPayloadEnd  = protoErr("Message Payload Size Mismatch: expected CRLF after payload")
	ErrHeldInput      = protoErr("Maximum Pending Input Exceeded: too much sent before CONNECT was verified")
	ErrAuthViolation  = protoErr("Authorization Violation")
)

// ErrSuspend, returned by a Handler, pauses the parser after the current
// operation: Parse returns it, input that follows (in this and later Parse
// calls) is held, bounded by HeldLimit, until Resume parses it. A handler
// uses it to finish an operation elsewhere (a slow credential check) while
// keeping what the client pipelined after it in order.
var ErrSuspend = errors.New("codec: parse suspended")

type state uint8

const (
	stateControl state = iota // reading a control line up to '\n'
	statePayload              // reading PUB/HPUB payload plus CRLF
)

// Parser is a resumable decoder of the client protocol. Feed it bytes in any
// split with Parse; it keeps partial control lines and payloads in its own
// scratch buffers. Owned by the goroutine that reads the connection (its event
// loop, or its reader goroutine); not safe for concurrent use.
type Parser struct {
	// MaxControlLine and MaxPayload bound what a client may send.
	MaxControlLine int
	MaxPayload     int
	// ConnectFirst refuses, at its first byte, any operation other than
	// CONNECT (ErrAuthViolation): set while a server that requires auth
	// waits for CONNECT, so that an unauthenticated client cannot make it
	// buffer a payload. The handler clears it once CONNECT is accepted.
	ConnectFirst bool

	h     Handler
	state state

	pending []byte // partial control line carried across reads
	args    [maxArgs][]byte

	// A PUB/HPUB whose payload spans reads: its arguments are copied into
	// argBuf and the payload accumulates in msg.
	argBuf  []byte
	subject []byte
	reply   []byte
	hdrLen  int
	size    int
	msg     []byte

	suspended bool
	held      []byte // input received while suspended
}

// HeldBeforeConnect bounds what a parser holds while the CONNECT that
// suspended it is verified and ConnectFirst is still set: a client not yet
// authenticated may pipeline a little (SUB, a small PUB, PING), but cannot
// park a payload in the server per socket while a slow check is pending.
const HeldBeforeConnect = 64 << 10

// HeldLimit is how much input a suspended parser holds: one operation of
// the largest size a client may send, or HeldBeforeConnect.
func (p *Parser) HeldLimit() int {
	n := p.MaxPayload + p.MaxControlLine + 4
	if p.ConnectFirst {
		return min(n, HeldBeforeConnect)
	}
	return n
}

// NewParser returns a parser that reports to h with nats-server's default limits.
func NewParser(h Handler) *Parser {
	p := &Parser{}
	p.Reset(h)
	return p
}

// Reset prepares p for a new connection reporting to h, keeping its buffers.
func (p *Parser) Reset(h Handler) {
	p.h = h
	p.state = stateControl
	p.pending = Reuse(p.pending)
	p.msg = Reuse(p.msg)
	p.suspended = false
	p.held = Reuse(p.held)
	if p.MaxControlLine == 0 {
		p.MaxControlLine = DefaultMaxControlLine
	}
	if p.MaxPayload == 0 {
		p.MaxPayload = DefaultMaxPayload
	}
}

// Buffered reports how many bytes of an unfinished operation p holds.
func (p *Parser) Buffered() int { return len(p.pending) + len(p.msg) }

// Parse consumes buf entirely, calling the handler for each complete
// operation. buf is not retained after Parse returns. After an error other
// than ErrSuspend the parser must not be used again: the connection is to
// be closed.
func (p *Parser) Parse(buf []byte) error {
	if p.suspended {
		if len(p.held)+len(buf) > p.HeldLimit() {
			return ErrHeldInput
		}
		p.held = append(p.held, buf...)
		return nil
	}
	return p.parse(buf)
}

// Suspended reports whether the parser waits for Resume.
func (p *Parser) Suspended() bool { return p.suspended }

// Resume continues a suspended parse with the input held meanwhile; it
// returns what Parse would have.
func (p *Parser) Resume() error {
	if !p.suspended {
		return nil
	}
	p.suspended = false
	held := p.held
	p.held = nil // a new suspension holds into a fresh buffer
	err := p.parse(held)
	if p.held == nil {
		p.held = Reuse(held)
	}
	return err
}

// suspend holds rest, the input after the operation that suspended.
func (p *Parser) suspend(rest []byte) error {
	p.suspended = true
	p.held = append(p.held[:0], rest...)
	return ErrSuspend
}

func (p *Parser) parse(buf []byte) error {
	for len(buf) > 0 {
		if p.state == statePayload {
			need := p.size + 2 - len(p.msg)
			if len(buf) < need {
				p.msg = append(p.msg, buf...)
				return nil
			}
			p.msg = append(p.msg, buf[:need]...)
			buf = buf[need:]
			err := p.finishPub(p.subject, p.reply, p.msg)
			p.msg = Reuse(p.msg) // one large PUB must not pin its size
			p.state = stateControl
			if err == ErrSuspend {
				return p.suspend(buf)
			}
			if err != nil {
				return err
			}
			continue
		}
		if p.ConnectFirst && len(p.pending) == 0 && buf[0]&^0x20 != 'C' {
			return ErrAuthViolation // as nats-server, before reading any further
		}
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if len(p.pending) == 0 && !canStartOp(buf[0]) {
				return ErrUnknownOp // junk: say so now rather than wait for a newline
			}
			if len(p.pending)+len(buf) > p.MaxControlLine+2 {
				return ErrMaxControlLine
			}
			p.pending = append(p.pending, buf...)
			return nil
		}
		line := buf[:i]
		buf = buf[i+1:]
		if len(p.pending) > 0 {
			p.pending = append(p.pending, line...)
			line = p.pending
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) > p.MaxControlLine {
			return ErrMaxControlLine
		}
		var err error
		buf, err = p.control(line, buf)
		p.pending = Reuse(p.pending)
		if err == ErrSuspend {
			return p.suspend(buf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// control dispatches one control line; for PUB/HPUB it takes the payload
// from rest when it is all there and returns what follows it.
func (p *Parser) control(line, rest []byte) ([]byte, error) {
	op, argLine := splitOp(line)
	switch len(op) {
	case 3:
		if eqFold3(op, 'P', 'U', 'B') {
			return p.pub(argLine, rest, false)
		}
		if eqFold3(op, 'S', 'U', 'B') {
			return rest, p.sub(argLine)
		}
	case 4:
		switch {
		case eqFold(op, "HPUB"):
			return p.pub(argLine, rest, true)
		case eqFold(op, "PING"):
			if len(argLine) > 0 {
				return rest, protoErr("Unknown Protocol Operation: PING takes no arguments")
			}
			return rest, p.h.ProcessPing()
		case eqFold(op, "PONG"):
			if len(argLine) > 0 {
				return rest, protoErr("Unknown Protocol Operation: PONG takes no arguments")
			}
			return rest, p.h.ProcessPong()
		}
	case 5:
		if eqFold(op, "UNSUB") {
			return rest, p.unsub(argLine)
		}
	case 7:
		if eqFold(op, "CONNECT") {
			if len(argLine) == 0 {
				return rest, protoErr("Invalid CONNECT: missing JSON options")
			}
			return rest, p.h.ProcessConnect(argLine)
		}
	}
	if len(line) == 0 {
		return rest, nil // an empty line is harmless; nats-server ignores it too
	}
	return rest, ErrUnknownOp
}

func (p *Parser) pub(argLine, rest []byte, headers bool) ([]byte, error) {
	n := splitArgs(argLine, &p.args)
	var subject, reply, hdrArg, sizeArg []byte
	op := "PUB"
	if headers {
		op = "HPUB"
		switch n {
		case 3:
			subject, hdrArg, sizeArg = p.args[0], p.args[1], p.args[2]
		case 4:
			subject, reply, hdrArg, sizeArg = p.args[0], p.args[1], p.args[2], p.args[3]
		default:
			return rest, protoErr("Invalid HPUB Arguments: want <subject> [reply] <header size> <total size>")
		}
	} else {
		switch n {
		case 2:
			subject, sizeArg = p.args[0], p.args[1]
		case 3:
			subject, reply, sizeArg = p.args[0], p.args[1], p.args[2]
		default:
			return rest, protoErr("Invalid PUB Arguments: want <subject> [reply] <size>")
		}
	}
	size := ParseSize(sizeArg)
	if size < 0 {
		return rest, protoErr("Invalid " + op + " Size: " + quoteArg(sizeArg))
	}
	hdrLen := -1
	if headers {
		hdrLen = ParseSize(hdrArg)
		if hdrLen < 0 || hdrLen > size {
			return rest, protoErr("Invalid HPUB Header Size: " + quoteArg(hdrArg))
		}
	}
	if size > p.MaxPayload {
		return rest, ErrMaxPayload
	}
	p.hdrLen, p.size = hdrLen, size
	if len(rest) >= size+2 {
		return rest[size+2:], p.finishPub(subject, reply, rest[:size+2])
	}
	// The payload spans reads: keep copies of the arguments, which point
	// into memory that is gone by the next Parse call.
	p.argBuf = append(p.argBuf[:0], subject...)
	p.argBuf = append(p.argBuf, reply...)
	p.subject = p.argBuf[:len(subject)]
	p.reply = p.argBuf[len(subject):]
	if len(reply) == 0 {
		p.reply = nil
	}
	p.msg = append(p.msg[:0], rest...)
	p.state = statePayload
	return nil, nil
}

// finishPub checks the CRLF that ends a payload and reports the message.
func (p *Parser) finishPub(subject, reply, msgCRLF []byte) error {
	n := len(msgCRLF) - 2
	if msgCRLF[n] != '\r' || msgCRLF[n+1] != '\n' {
		return ErrBadPayloadEnd
	}
	return p.h.ProcessPub(subject, reply, p.hdrLen, msgCRLF[:n])
}

func (p *Parser) sub(argLine []byte) error {
	switch splitArgs(argLine, &p.args) {
	case 2:
		return p.h.ProcessSub(p.args[0], nil, p.args[1])
	case 3:
		return p.h.ProcessSub(p.args[0], p.args[1], p.args[2])
	}
	return protoErr("Invalid SUB Arguments: want <subject> [queue group] <sid>")
}

func (p *Parser) unsub(argLine []byte) error {
	switch splitArgs(argLine, &p.args) {
	case 1:
		return p.h.ProcessUnsub(p.args[0], 0)
	case 2:
		max := ParseSize(p.args[1])
		if max < 0 {
			return protoErr("Invalid UNSUB Max: " + quoteArg(p.args[1]))
		}
		return p.h.ProcessUnsub(p.args[0], max)
	}
	return protoErr("Invalid UNSUB Arguments: want <sid> [max msgs]")
}

// splitOp splits a control line into its operation and the rest, trimmed.
func splitOp(line []byte) (op, rest []byte) {
	i := 0
	for i < len(line) && !isSpace(line[i]) {
		i++
	}
	op = line[:i]
	for i < len(line) && isSpace(line[i]) {
		i++
	}
	return op, line[i:]
}

// splitArgs splits on runs of spaces and tabs into args and returns how many
// it found; a count above maxArgs means too many. Tokens are scanned eight
// bytes at a time (sepIndex): a PUB's subject is the bulk of its line.
func splitArgs(line []byte, args *[maxArgs][]byte) int {
	n := 0
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			return n
		}
		if n == maxArgs {
			return n + 1
		}
		end := i + 1 + sepIndex(line[i+1:])
		args[n] = line[i:end]
		n++
		i = end
	}
}

// sepIndex returns the index of the first space or tab in b, or len(b).
func sepIndex(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		x, y := v^(' '*lo), v^('\t'*lo)
		// A zero byte in x or y is a separator; the lowest flagged byte
		// is exact (borrows only flag bytes above a zero one).
		if m := ((x-lo)&^x | (y-lo)&^y) & hi; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if isSpace(b[i]) {
			return i
		}
	}
	return len(b)
}

// canStartOp reports whether b may begin a client operation.
func canStartOp(b byte) bool {
	switch b &^ 0x20 {
	case 'C', 'P', 'H', 'S', 'U':
		return true
	}
	return b == '\r'
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' }

// ParseSize parses a non-negative decimal integer; it returns -1 for anything
// else, including values that would overflow.
func ParseSize(b []byte) int {
	if len(b) == 0 || len(b) > 10 {
		return -1
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func eqFold3(op []byte, a, b, c byte) bool {
	return op[0]&^0x20 == a && op[1]&^0x20 == b && op[2]&^0x20 == c
}

// eqFold compares op to an upper-case ASCII word, ignoring case.
func eqFold(op []byte, word string) bool {
	if len(op) != len(word) {
		return false
	}
	for i := range op {
		if op[i]&^0x20 != word[i] {
			return false
		}
	}
	return true
}

// quoteArg renders a bad argument for an error message, bounded and printable.
func quoteArg(b []byte) string {
	const max = 32
	if len(b) > max {
		b = b[:max]
	}
	out := make([]byte, 0, len(b)+2)
	out = append(out, '"')
	for _, c := range b {
		if c < 0x20 || c > 0x7e || c == '\'' {
			c = '?'
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}

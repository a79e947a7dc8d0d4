package mqtt

// Concurrency: pure functions over a message's NATS header block; any
// goroutine. The Properties a function fills belong to the caller (for a
// delivery, the subscriber's conn under its outLock).

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// MQTT 5 properties travel through NATS as headers of the message (the
// mapping the README documents):
//
//	Nmqtt-Pub: <qos>            the publisher's QoS (as nats-server)
//	Nmqtt-Format: 1             payload format indicator (UTF-8)
//	Nmqtt-Expiry: <seconds>     message expiry interval at publish
//	Nmqtt-Corr: <base64>        correlation data
//	Nmqtt-Retain: 1             published with RETAIN (for retain as published)
//	Content-Type: <type>        content type
//	<name>: <value>             each user property whose name is a header name
//
// and the response topic is the message's reply subject.
const (
	hdrFormat  = "Nmqtt-Format"
	hdrExpiry  = "Nmqtt-Expiry"
	hdrCorr    = "Nmqtt-Corr"
	hdrRetain  = "Nmqtt-Retain"
	hdrContent = "Content-Type"
	hdrPrefix  = "Nmqtt-"
)

func unixNow() int64 { return time.Now().Unix() }

// eachHeader calls fn with each name and value of a NATS header block
// (after the status line), values trimmed of leading blanks.
func eachHeader(hdr []byte, fn func(k, v []byte)) {
	i := bytes.Index(hdr, []byte("\r\n"))
	if i < 0 {
		return
	}
	hdr = hdr[i+2:]
	for len(hdr) > 0 {
		j := bytes.Index(hdr, []byte("\r\n"))
		if j < 0 {
			j = len(hdr)
		}
		line := hdr[:j]
		hdr = hdr[min(j+2, len(hdr)):]
		if c := bytes.IndexByte(line, ':'); c > 0 {
			fn(line[:c], bytes.TrimLeft(line[c+1:], " \t"))
		}
	}
}

// bareHeader reports whether hdr is the header block of an MQTT publish
// without properties, "NATS/1.0\r\nNmqtt-Pub:<qos>\r\n\r\n", which names no
// property to look for: the usual message between MQTT clients, delivered
// without a walk over its lines.
func bareHeader(hdr []byte) bool {
	n := len(mqttHeaderPrefix)
	return len(hdr) == n+5 && string(hdr[:n]) == mqttHeaderPrefix && string(hdr[n+1:]) == "\r\n\r\n"
}

// headerValue returns the value of header name in hdr (nil when absent).
func headerValue(hdr []byte, name string) []byte {
	var out []byte
	eachHeader(hdr, func(k, v []byte) {
		if out == nil && string(k) == name {
			out = v
		}
	})
	return out
}

// headerExpires returns when the message expiry interval in hdr runs out
// (unix seconds), or 0 when it has none.
func headerExpires(hdr []byte) int64 {
	if len(hdr) == 0 {
		return 0
	}
	v := headerValue(hdr, hdrExpiry)
	if v == nil {
		return 0
	}
	n, err := strconv.ParseUint(string(v), 10, 32)
	if err != nil {
		return 0
	}
	return unixNow() + int64(n)
}

// validHeaderName reports whether an MQTT user property name can be a NATS
// header name as it is: printable ASCII without ':' or blanks, and not one
// of the names the bridge itself uses.
func validHeaderName(k []byte) bool {
	if len(k) == 0 || len(k) > 256 {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return !hasPrefixFold(k, hdrPrefix) && !bytes.EqualFold(k, []byte(hdrContent)) && !bytes.EqualFold(k, []byte("NATS/1.0"))
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// validHeaderValue reports whether v fits on one header line.
func validHeaderValue(v []byte) bool { return bytes.IndexAny(v, "\r\n") < 0 }

// appendPropHeaders appends the header lines that carry an MQTT 5
// PUBLISH's (or will's) properties; user properties that cannot be header
// lines are dropped (see validHeaderName).
func appendPropHeaders(dst []byte, p *mcodec.Properties, retain bool) []byte {
	line := func(k string, v []byte) {
		dst = append(append(append(append(dst, k...), ':'), v...), '\r', '\n')
	}
	if p.Has(mcodec.PropPayloadFormat) && p.PayloadFormat == 1 {
		line(hdrFormat, []byte{'1'})
	}
	if p.Has(mcodec.PropMessageExpiry) {
		dst = append(append(dst, hdrExpiry...), ':')
		dst = strconv.AppendUint(dst, uint64(p.MessageExpiry), 10)
		dst = append(dst, '\r', '\n')
	}
	if p.Has(mcodec.PropCorrelationData) {
		dst = append(append(dst, hdrCorr...), ':')
		dst = base64.StdEncoding.AppendEncode(dst, p.CorrelationData)
		dst = append(dst, '\r', '\n')
	}
	if p.Has(mcodec.PropContentType) && validHeaderValue(p.ContentType) {
		line(hdrContent, p.ContentType)
	}
	if retain {
		line(hdrRetain, []byte{'1'})
	}
	for _, u := range p.User {
		if validHeaderName(u.Key) && validHeaderValue(u.Value) {
			line(string(u.Key), u.Value)
		}
	}
	return dst
}

// outProps is what a delivery to an MQTT 5 subscriber learns from a
// message's headers, besides the Properties it fills.
type outProps struct {
	retain bool // Nmqtt-Retain
}

// propsFromHeaders fills p (reset first) with the properties hdr carries
// for an MQTT 5 subscriber: every header that is not the bridge's own
// becomes a user property. corr is scratch for the decoded correlation
// data; the returned slice is the grown scratch. expires, when not 0,
// overrides the header's expiry interval with the time left (queued
// messages).
//
// Nmqtt-Reply and Nmqtt-Sub are honoured only for stored: a session's
// queued message, whose header storedHeader made; on a message as
// published they are a publisher's forgery.
func propsFromHeaders(p *mcodec.Properties, hdr []byte, corr []byte, expires int64, o *outProps, stored bool) []byte {
	p.Reset()
	*o = outProps{}
	if len(hdr) == 0 || bareHeader(hdr) {
		return corr
	}
	eachHeader(hdr, func(k, v []byte) {
		switch {
		case hasPrefixFold(k, hdrPrefix):
			switch string(k[len(hdrPrefix):]) {
			case "Format":
				if string(v) == "1" {
					p.Set(mcodec.PropPayloadFormat)
					p.PayloadFormat = 1
				}
			case "Expiry":
				if n, err := strconv.ParseUint(string(v), 10, 32); err == nil {
					p.Set(mcodec.PropMessageExpiry)
					p.MessageExpiry = uint32(n)
				}
			case "Corr":
				var err error
				start := len(corr)
				// A property value has a 2-byte length: a longer one
				// would wrap it, and its bytes would be read as properties.
				if corr, err = base64.StdEncoding.AppendDecode(corr, v); err == nil && len(corr)-start < 1<<16 {
					p.Set(mcodec.PropCorrelationData)
					p.CorrelationData = corr[start:]
				}
			case "Retain":
				o.retain = string(v) == "1"
			case "Reply": // stored with a queued message (storedHeader)
				if !stored {
					break
				}
				if t := SubjectToTopic(string(v)); len(t) < 1<<16 {
					p.Set(mcodec.PropResponseTopic)
					p.ResponseTopic = []byte(t)
				}
			case "Sub":
				if !stored {
					break
				}
				if n, err := strconv.ParseUint(string(v), 10, 32); err == nil && n > 0 && n <= maxSubID {
					p.Set(mcodec.PropSubscriptionID)
					p.SubIDs = append(p.SubIDs, uint32(n))
				}
			}
		case bytes.EqualFold(k, []byte(hdrContent)):
			if validUTF8String(v) {
				p.Set(mcodec.PropContentType)
				p.ContentType = v
			}
		default:
			if validUTF8String(k) && validUTF8String(v) {
				p.Set(mcodec.PropUserProperty)
				p.User = append(p.User, mcodec.UserProperty{Key: k, Value: v})
			}
		}
	})
	if expires != 0 && p.Has(mcodec.PropMessageExpiry) {
		left := expires - unixNow()
		p.MessageExpiry = uint32(max(left, 1))
	}
	return corr
}

// storedHeader returns the header block an MQTT 5 session keeps with a
// QoS 1/2 message: hdr plus, when there are any, the reply subject
// (Nmqtt-Reply) and subscription identifier (Nmqtt-Sub) the message was
// delivered with, so that it is sent later with its response topic and
// identifier. It allocates only when it adds something.
//
// Nmqtt-Reply and Nmqtt-Sub lines the publisher put in hdr are left out:
// the session's own are the only ones it may keep.
func storedHeader(hdr, reply []byte, subID uint32) []byte {
	forged := hasSessionHeader(hdr)
	if len(reply) == 0 && subID == 0 && !forged {
		return hdr
	}
	var out []byte
	if len(hdr) >= 4 && !forged {
		out = append(out, hdr[:len(hdr)-2]...) // up to the blank line
	} else if len(hdr) >= 4 {
		i := bytes.Index(hdr, []byte("\r\n"))
		out = append(out, hdr[:i+2]...) // the status line
		eachHeader(hdr, func(k, v []byte) {
			if !isSessionHeader(k) {
				out = append(append(append(append(out, k...), ':'), v...), '\r', '\n')
			}
		})
	} else {
		out = append(out, "NATS/1.0\r\n"...)
	}
	if len(reply) > 0 {
		out = append(append(append(out, "Nmqtt-Reply:"...), reply...), '\r', '\n')
	}
	if subID != 0 {
		out = strconv.AppendUint(append(out, "Nmqtt-Sub:"...), uint64(subID), 10)
		out = append(out, '\r', '\n')
	}
	return append(out, '\r', '\n')
}

// maxSubID is the largest subscription identifier (a 4-byte variable
// byte integer).
const maxSubID = 268_435_455

// isSessionHeader reports whether header name k is Nmqtt-Reply or
// Nmqtt-Sub, as propsFromHeaders matches them (any case).
func isSessionHeader(k []byte) bool {
	if !hasPrefixFold(k, hdrPrefix) {
		return false
	}
	rest := string(k[len(hdrPrefix):])
	return rest == "Reply" || rest == "Sub"
}

// hasSessionHeader reports whether hdr has a Nmqtt-Reply or Nmqtt-Sub
// line. It allocates nothing.
func hasSessionHeader(hdr []byte) bool {
	for len(hdr) > 0 {
		i := bytes.Index(hdr, []byte("\r\n"))
		if i < 0 {
			i = len(hdr)
		}
		if c := bytes.IndexByte(hdr[:i], ':'); c > 0 && isSessionHeader(hdr[:c]) {
			return true
		}
		hdr = hdr[min(i+2, len(hdr)):]
	}
	return false
}

// validUTF8String reports whether b may be an MQTT UTF-8 string.
func validUTF8String(b []byte) bool {
	return len(b) < 1<<16 && utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

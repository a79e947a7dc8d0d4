package codec

// Concurrency: stateless appenders; the caller owns dst (for the broker,
// the client's output, under its outLock or on its loop).

// Encoders append one packet to dst and return the extended slice, so the
// broker formats straight into a connection's outbound buffer.

// AppendRemainingLength appends the variable-length encoding of n.
func AppendRemainingLength(dst []byte, n int) []byte {
	for {
		b := byte(n % 128)
		n /= 128
		if n > 0 {
			b |= 0x80
		}
		dst = append(dst, b)
		if n == 0 {
			return dst
		}
	}
}

// AppendConnack appends CONNACK.
func AppendConnack(dst []byte, sessionPresent bool, code byte) []byte {
	sp := byte(0)
	if sessionPresent && code == Accepted {
		sp = 1
	}
	return append(dst, CONNACK<<4, 2, sp, code)
}

// AppendPublishHeader appends PUBLISH up to its payload, which the caller
// writes next (straight from the message, without a copy); id is used only
// for QoS 1 and 2.
func AppendPublishHeader(dst []byte, topic string, payloadLen int, qos byte, retain, dup bool, id uint16) []byte {
	first := PUBLISH<<4 | qos<<1
	if retain {
		first |= 0x01
	}
	if dup {
		first |= 0x08
	}
	n := 2 + len(topic) + payloadLen
	if qos > 0 {
		n += 2
	}
	dst = append(dst, first)
	dst = AppendRemainingLength(dst, n)
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	if qos > 0 {
		dst = append(dst, byte(id>>8), byte(id))
	}
	return dst
}

// AppendPublish appends a whole PUBLISH; id is used only for QoS 1 and 2.
func AppendPublish(dst, topic, payload []byte, qos byte, retain, dup bool, id uint16) []byte {
	return append(AppendPublishHeader(dst, string(topic), len(payload), qos, retain, dup, id), payload...)
}

// AppendAck appends PUBACK, PUBREC, PUBREL, PUBCOMP or UNSUBACK for id.
func AppendAck(dst []byte, kind byte, id uint16) []byte {
	first := kind << 4
	if kind == PUBREL {
		first |= 0x02
	}
	return append(dst, first, 2, byte(id>>8), byte(id))
}

// AppendSuback appends SUBACK with one return code per filter.
func AppendSuback(dst []byte, id uint16, codes []byte) []byte {
	dst = append(dst, SUBACK<<4)
	dst = AppendRemainingLength(dst, 2+len(codes))
	dst = append(dst, byte(id>>8), byte(id))
	return append(dst, codes...)
}

// AppendPingresp appends PINGRESP.
func AppendPingresp(dst []byte) []byte { return append(dst, PINGRESP<<4, 0) }

// AppendConnack5 appends an MQTT 5 CONNACK with its reason code and
// properties.
func AppendConnack5(dst []byte, sessionPresent bool, reason byte, props *Properties) []byte {
	sp := byte(0)
	if sessionPresent && reason == ReasonSuccess {
		sp = 1
	}
	dst = append(dst, CONNACK<<4)
	dst = AppendRemainingLength(dst, 2+PropertiesLen(props))
	dst = append(dst, sp, reason)
	return AppendProperties(dst, props)
}

// AppendPublishHeader5 appends an MQTT 5 PUBLISH up to its payload: as
// AppendPublishHeader, with properties (nil: none).
func AppendPublishHeader5(dst []byte, topic string, payloadLen int, qos byte, retain, dup bool, id uint16, props *Properties) []byte {
	first := PUBLISH<<4 | qos<<1
	if retain {
		first |= 0x01
	}
	if dup {
		first |= 0x08
	}
	n := 2 + len(topic) + payloadLen + PropertiesLen(props)
	if qos > 0 {
		n += 2
	}
	dst = append(dst, first)
	dst = AppendRemainingLength(dst, n)
	dst = append(dst, byte(len(topic)>>8), byte(len(topic)))
	dst = append(dst, topic...)
	if qos > 0 {
		dst = append(dst, byte(id>>8), byte(id))
	}
	return AppendProperties(dst, props)
}

// PublishSize5 is the whole size of the MQTT 5 PUBLISH AppendPublishHeader5
// would start, payload included.
func PublishSize5(topicLen, payloadLen int, qos byte, props *Properties) int {
	n := 2 + topicLen + payloadLen + PropertiesLen(props)
	if qos > 0 {
		n += 2
	}
	return 1 + varintLen(n) + n
}

// AppendAck5 appends an MQTT 5 PUBACK, PUBREC, PUBREL or PUBCOMP; with
// reason 0 and no properties it is the short form, as on MQTT 3.1.1.
func AppendAck5(dst []byte, kind byte, id uint16, reason byte, props *Properties) []byte {
	if reason == 0 && props.Size() == 0 {
		return AppendAck(dst, kind, id)
	}
	first := kind << 4
	if kind == PUBREL {
		first |= 0x02
	}
	dst = append(dst, first)
	dst = AppendRemainingLength(dst, 3+PropertiesLen(props))
	dst = append(dst, byte(id>>8), byte(id), reason)
	return AppendProperties(dst, props)
}

// AppendSuback5 appends an MQTT 5 SUBACK (or, with kind UNSUBACK, an
// UNSUBACK): the packet id, properties, one reason code per filter.
func AppendSuback5(dst []byte, kind byte, id uint16, codes []byte, props *Properties) []byte {
	dst = append(dst, kind<<4)
	dst = AppendRemainingLength(dst, 2+PropertiesLen(props)+len(codes))
	dst = append(dst, byte(id>>8), byte(id))
	dst = AppendProperties(dst, props)
	return append(dst, codes...)
}

// AppendDisconnect5 appends an MQTT 5 DISCONNECT with its reason code.
func AppendDisconnect5(dst []byte, reason byte, props *Properties) []byte {
	return appendReasonPacket(dst, DISCONNECT, reason, props)
}

// AppendAuth appends an MQTT 5 AUTH.
func AppendAuth(dst []byte, reason byte, props *Properties) []byte {
	return appendReasonPacket(dst, AUTH, reason, props)
}

func appendReasonPacket(dst []byte, kind, reason byte, props *Properties) []byte {
	if reason == 0 && props.Size() == 0 {
		return append(dst, kind<<4, 0)
	}
	dst = append(dst, kind<<4)
	dst = AppendRemainingLength(dst, 1+PropertiesLen(props))
	dst = append(dst, reason)
	return AppendProperties(dst, props)
}

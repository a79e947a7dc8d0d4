// Package mqtt bridges MQTT 3.1.1 and 5 clients onto the NATS router. This file
// maps MQTT topics and filters to NATS subjects and back, exactly as
// nats-server maps them, so mixed deployments see the same subjects.
package mqtt

// Concurrency: pure functions; any goroutine.

import (
	"errors"
	"strings"
)

// ErrTopicChars is returned for topics nats-server cannot carry either:
// whitespace or DEL.
var ErrTopicChars = errors.New("mqtt: topic contains whitespace or DEL")

// TopicToSubject maps an MQTT topic (or, with wildcards, a filter) to a NATS
// subject: '/' separates tokens, '+' and '#' become '*' and '>', a '.'
// inside a level becomes "//", and an empty level becomes the token "/".
func TopicToSubject(topic string, wildcards bool) (string, error) {
	var b strings.Builder
	b.Grow(len(topic) + 4)
	for first := true; ; first = false { // level by level, without a split's slice
		level, rest, more := strings.Cut(topic, "/")
		topic = rest
		if !first {
			b.WriteByte('.')
		}
		switch {
		case level == "":
			b.WriteByte('/')
		case wildcards && level == "+":
			b.WriteByte('*')
		case wildcards && level == "#":
			b.WriteByte('>')
		default:
			for j := 0; j < len(level); j++ {
				switch c := level[j]; c {
				case ' ', '\t', '\n', '\r', '\f', 0x7f:
					return "", ErrTopicChars
				case '.':
					b.WriteString("//")
				case '+', '#':
					return "", errors.New("mqtt: wildcard inside a topic level")
				default:
					b.WriteByte(c)
				}
			}
		}
		if !more {
			return b.String(), nil
		}
	}
}

// SubjectToTopic maps a NATS subject back to the MQTT topic a subscriber
// sees: the inverse of TopicToSubject for literal subjects.
func SubjectToTopic(subject string) string {
	tokens := strings.Split(subject, ".")
	for i, t := range tokens {
		if t == "/" {
			tokens[i] = ""
		} else {
			tokens[i] = strings.ReplaceAll(t, "//", ".")
		}
	}
	return strings.Join(tokens, "/")
}

// ErrSharedFilter is a "$share/" filter without a valid group and filter.
var ErrSharedFilter = errors.New("mqtt: shared subscription needs $share/<group>/<filter>")

// SharedFilter splits a shared subscription's filter "$share/<group>/<f>"
// into its group, which becomes a NATS queue group, and f; group is ""
// for a filter that is not shared.
func SharedFilter(filter string) (group, f string, err error) {
	rest, ok := strings.CutPrefix(filter, "$share/")
	if !ok {
		return "", filter, nil
	}
	group, f, ok = strings.Cut(rest, "/")
	if !ok || group == "" || f == "" || strings.ContainsAny(group, "+# \t\r\n") {
		return "", "", ErrSharedFilter
	}
	return group, f, nil
}

// FilterSubjects returns the NATS subjects an MQTT filter subscribes to:
// "foo/#" also matches "foo" itself, so it needs "foo" as well as "foo.>".
// A shared filter subscribes its inner filter's subjects (SharedFilter).
func FilterSubjects(filter string) ([]string, error) {
	_, filter, err := SharedFilter(filter)
	if err != nil {
		return nil, err
	}
	s, err := TopicToSubject(filter, true)
	if err != nil {
		return nil, err
	}
	if base, ok := strings.CutSuffix(s, ".>"); ok {
		return []string{base, s}, nil
	}
	return []string{s}, nil
}

// SkipsDollarTopics reports whether a filter must not match topics that start
// with '$' (MQTT 3.1.1 section 4.7.2): filters starting with a wildcard.
func SkipsDollarTopics(filter string) bool {
	if _, f, err := SharedFilter(filter); err == nil {
		filter = f
	}
	return strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")
}

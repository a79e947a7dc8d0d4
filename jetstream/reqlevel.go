package jetstream

// Concurrency: pure functions; the Manager calls them on its goroutine.

import (
	"strconv"
	"strings"
)

// A request may say which JetStream API level it needs with the header
// Nats-Required-Api-Level (nats-server 2.12+): a server below that level,
// or a value that is not a number, refuses it before anything else
// (412, 10185) rather than half-understanding it.
const hdrRequiredLevel = "Nats-Required-Api-Level"

var errLevelRequired = errDef{412, 10185, "JetStream minimum api level required"}

// needsHigherLevel reports whether hdr asks for a level evnats lacks.
func needsHigherLevel(hdr []byte) bool {
	if len(hdr) == 0 {
		return false
	}
	v := headerValue(hdr, hdrRequiredLevel)
	if v == "" {
		return false
	}
	n, err := strconv.Atoi(v)
	return err != nil || n > apiLevel
}

// apiResponseTypes maps a request's subject (without "$JS.API.") to its
// response type, for errors given before the request is routed.
var apiResponseTypes = []struct{ prefix, typ string }{
	{"INFO", typeInfo},
	{"STREAM.CREATE.", typeCreate},
	{"STREAM.UPDATE.", typeUpdate},
	{"STREAM.INFO.", typeStreamInfo},
	{"STREAM.DELETE.", typeDelete},
	{"STREAM.PURGE.", typePurge},
	{"STREAM.MSG.GET.", typeMsgGet},
	{"STREAM.MSG.DELETE.", typeMsgDelete},
	{"STREAM.NAMES", typeNames},
	{"STREAM.LIST", typeList},
	{"CONSUMER.CREATE.", typeConsumerCreate},
	{"CONSUMER.DURABLE.CREATE.", typeConsumerCreate},
	{"CONSUMER.INFO.", typeConsumerInfo},
	{"CONSUMER.DELETE.", typeConsumerDelete},
	{"CONSUMER.NAMES.", typeConsumerNames},
	{"CONSUMER.LIST.", typeConsumerList},
	{"CONSUMER.PAUSE.", typeConsumerPause},
	{"CONSUMER.UNPIN.", typeConsumerUnpin},
}

func apiResponseType(op string) string {
	for _, t := range apiResponseTypes {
		if op == t.prefix || strings.HasSuffix(t.prefix, ".") && strings.HasPrefix(op, t.prefix) {
			return t.typ
		}
	}
	return "io.nats.jetstream.api.v1.error_response"
}

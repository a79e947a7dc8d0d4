package jetstream

// Concurrency: pure validation and values; any goroutine, no locks.

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxNameLen bounds stream and consumer names, as nats-server's JSMaxNameLen.
const maxNameLen = 255

// validName reports whether name may name a stream or consumer: nats-server's
// asset name rules (no '.', '*', '>', path separators or whitespace), and no
// control characters or invalid UTF-8, which no file system or subject token
// should carry (nor survive the JSON a config is stored in).
// Names become directory names and subject tokens, so this is what keeps a
// client inside the store.
func validName(name string) bool {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c < 0x20 || c == 0x7f:
			return false
		case c == ' ' || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\':
			return false
		}
	}
	return true
}

var errOutsideStore = errors.New("path outside the store")

// storePath joins root and elems, each a single plain path element, and
// refuses any result that is not strictly inside root. Every directory made
// or removed for a client-supplied name is built here, so a name that slipped
// past validation still cannot reach outside the store.
func storePath(root string, elems ...string) (string, error) {
	for _, e := range elems {
		if e == "" || e == "." || e == ".." || strings.ContainsAny(e, "/\\\x00") {
			return "", errOutsideStore
		}
	}
	root = filepath.Clean(root)
	p := filepath.Join(append([]string{root}, elems...)...)
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", errOutsideStore
	}
	return p, nil
}

// consumerName settles a consumer create request's name as nats-server does:
// the subject's name wins, a durable in the body must agree with it, the
// legacy ephemeral form takes no durable; then every name is checked.
func consumerName(kind int, subjName string, cfg *ConsumerConfig) *APIError {
	if subjName != "" && strings.ContainsAny(subjName, `/\`) {
		return newErr(errConsumerNamePath)
	}
	switch kind {
	case ccLegacyEphemeral:
		if cfg.Durable != "" {
			return newErr(errEphemeralDurable)
		}
	case ccLegacyDurable:
		if cfg.Durable == "" {
			return newErr(errDurableNotSet)
		}
		if cfg.Durable != subjName {
			return newErr(errDurableMismatch)
		}
		cfg.Name = subjName
	case ccNew:
		if cfg.Durable != "" && cfg.Durable != subjName {
			return newErr(errDurableMismatch)
		}
		cfg.Name = subjName
	}
	for _, n := range []string{cfg.Name, cfg.Durable} {
		if len(n) > maxNameLen {
			return newErr(errConsumerNameLong, "max", strconv.Itoa(maxNameLen))
		}
	}
	if cfg.Name != "" && !validName(cfg.Name) {
		return newErr(errStreamConfig, "err", `consumer name can not contain '.', '*', '>', '\', '/'`)
	}
	if cfg.Durable != "" && !validName(cfg.Durable) {
		return newErr(errStreamConfig, "err", `consumer durable name can not contain '.', '*', '>', '\', '/'`)
	}
	if cfg.Durable != "" && cfg.Name != "" && cfg.Durable != cfg.Name {
		return newErr(errDurableNameEqual)
	}
	return nil
}

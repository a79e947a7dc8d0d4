package leaf

// s2 compression on the link, negotiated as nats-server does: the hub's
// first INFO says its mode; if both sides want compression the leaf sends
// an INFO with its own mode in plain text, and from then on reads and
// writes s2 streams (the hub's next INFO, with the nonce, is the first
// compressed bytes); CONNECT says the mode in compress_mode.

import (
	"fmt"
	"time"

	"github.com/klauspost/compress/s2"
)

// Compression modes, spelled as nats-server spells them.
const (
	compNotSupported = "not supported"
	compOff          = "off"
	compAccept       = "accept"
	compAuto         = "s2_auto"
	compUncompressed = "s2_uncompressed"
	compFast         = "s2_fast"
	compBetter       = "s2_better"
	compBest         = "s2_best"
)

// ParseCompression normalises a remote's compression setting: "" is
// s2_auto (nats-server's default for remotes); true and false, enabled
// and disabled are accepted too.
func ParseCompression(v string) (string, error) {
	switch v {
	case "", "true", "on", "enabled", compAuto:
		return compAuto, nil
	case "false", "disabled", compOff:
		return compOff, nil
	case compAccept, compUncompressed, compFast, compBetter, compBest:
		return v, nil
	}
	return "", fmt.Errorf("unsupported compression mode %q", v)
}

// needsCompression reports whether mode m asks for compression.
func needsCompression(m string) bool { return m != "" && m != compOff && m != compNotSupported }

// selectMode is the mode the leaf uses given its own (ours) and the
// hub's (theirs, from its INFO).
func selectMode(ours, theirs string) (string, error) {
	switch theirs {
	case "", compNotSupported:
		return compNotSupported, nil
	case compOff:
		return compOff, nil
	case compAccept:
		if ours == compAccept {
			return compOff, nil
		}
		return ours, nil
	case compAuto, compUncompressed, compFast, compBetter, compBest:
		if ours == compAccept {
			if theirs == compAuto {
				return compFast, nil
			}
			return theirs, nil
		}
		return ours, nil
	}
	return "", fmt.Errorf("hub asks for unsupported compression mode %q", theirs)
}

// autoMode picks the level of s2_auto from the round trip time, with
// nats-server's default thresholds.
func autoMode(rtt time.Duration) string {
	switch {
	case rtt <= 10*time.Millisecond:
		return compUncompressed
	case rtt <= 50*time.Millisecond:
		return compFast
	case rtt <= 100*time.Millisecond:
		return compBetter
	}
	return compBest
}

// newCompressor returns the s2 stream writer for mode m, which compresses
// on the calling goroutine (no background goroutines).
func newCompressor(m string) *s2.Writer {
	opts := []s2.WriterOption{s2.WriterConcurrency(1)}
	switch m {
	case compUncompressed:
		opts = append(opts, s2.WriterUncompressed())
	case compBetter:
		opts = append(opts, s2.WriterBetterCompression())
	case compBest:
		opts = append(opts, s2.WriterBestCompression())
	}
	return s2.NewWriter(nil, opts...)
}

//go:build race

package loop_test

// stormScale divides TestTLSHandshakeStorm's clients and messages under
// the race detector, which slows handshakes and streams tenfold.
const stormScale = 3

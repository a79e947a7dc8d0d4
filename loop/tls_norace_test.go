//go:build !race

package loop_test

// stormScale divides TestTLSHandshakeStorm's clients and messages; full
// size without the race detector.
const stormScale = 1

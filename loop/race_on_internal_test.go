//go:build race

package loop

// raceDetector: the race detector's instrumentation allocates where the
// code does not (crypto/tls's record sealing), so allocation counts are
// checked without it.
const raceDetector = true

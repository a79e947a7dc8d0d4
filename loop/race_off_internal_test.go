//go:build !race

package loop

// raceDetector: see race_on_internal_test.go.
const raceDetector = false

//go:build race

package loop_test

// flowScale divides the flow-control scenarios' message counts under the
// race detector, which slows them tenfold; full sizes run without -race.
const flowScale = 4

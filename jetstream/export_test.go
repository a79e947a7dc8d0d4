package jetstream

import "time"

// SetAPIHandlerPanicking makes every API request on subject panic inside
// its handler until the returned function is called.
func SetAPIHandlerPanicking(subject string) (restore func()) {
	h := func(s string) {
		if s == subject {
			panic("test: handler panic")
		}
	}
	testHook.Store(&h)
	return func() { testHook.Store(nil) }
}

// SetBatchTimeout changes the atomic batch inactivity timeout until the
// returned function is called. Not for parallel tests.
func SetBatchTimeout(d time.Duration) (restore func()) {
	old := batchTimeout
	batchTimeout = d
	return func() { batchTimeout = old }
}

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

// SetLinkCatchUp makes mirrors and sources copy n messages per tick and
// no more, until the returned function restores the default.
func SetLinkCatchUp(n int) (restore func()) {
	old := linkCatchUp.Swap(int64(n))
	linkPaced.Store(true)
	return func() { linkCatchUp.Store(old); linkPaced.Store(false) }
}

// SetBatchTimeout changes the atomic batch inactivity timeout until the
// returned function is called. Not for parallel tests.
func SetBatchTimeout(d time.Duration) (restore func()) {
	old := batchTimeout
	batchTimeout = d
	return func() { batchTimeout = old }
}

// SetMaxStagedBytes changes the bound on bytes staged by atomic batches
// until the returned function is called. Not for parallel tests.
func SetMaxStagedBytes(n int64) (restore func()) {
	old := maxStagedBytes.Swap(n)
	return func() { maxStagedBytes.Store(old) }
}

// SetStreamTick changes the interval of the streams' timed work for
// Managers started afterwards, until the returned function is called.
// Not for parallel tests.
func SetStreamTick(d time.Duration) (restore func()) {
	old := streamTick.Swap(d)
	return func() { streamTick.Store(old) }
}

// StreamTicks is how many times any Manager in this process has run its
// streams' timed work.
func StreamTicks() uint64 { return streamTicks.Load() }

// SetPublishInPlace turns handling stream publishes on their publishers'
// goroutines on or off until the returned function is called.
func SetPublishInPlace(on bool) (restore func()) {
	old := inPlace.Swap(on)
	return func() { inPlace.Store(old) }
}

// SetAPIHandlerDelay makes every API request on subject hold the
// Manager for d inside its handler until the returned function is called.
func SetAPIHandlerDelay(subject string, d time.Duration) (restore func()) {
	h := func(s string) {
		if s == subject {
			time.Sleep(d)
		}
	}
	testHook.Store(&h)
	return func() { testHook.Store(nil) }
}

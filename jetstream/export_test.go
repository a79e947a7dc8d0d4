package jetstream

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

package leaf

// SetMaxPending sets how far a link may fall behind before it is cut, and
// returns what restores it.
func SetMaxPending(n int) (restore func()) {
	old := maxPending
	maxPending = n
	return func() { maxPending = old }
}

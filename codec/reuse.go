package codec

// Concurrency: a pure helper; the caller owns the buffer.

// RetainLimit is the largest buffer a connection keeps between messages.
// One large message grows a parse or publish buffer to its size; keeping
// that capacity would pin it per idle connection (500 sockets x 1 MB PUB
// = 500 MB), so a buffer above the limit is dropped after use.
const RetainLimit = 64 << 10

// Reuse returns b emptied for the next message, or nil when b has grown
// past RetainLimit and should go back to the garbage collector.
func Reuse(b []byte) []byte {
	if cap(b) > RetainLimit {
		return nil
	}
	return b[:0]
}

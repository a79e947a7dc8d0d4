package jetstream

// Concurrency: a fifo is owned by whoever owns the struct it is in (the
// Manager goroutine for a stream's); no locks.

// fifo is a first-in first-out queue that reuses its slice: once it
// empties it starts again at the front, and when most of it has been
// taken it moves what is left down, so a steady flow through it allocates
// nothing and a long backlog does not grow it without bound.
type fifo[T any] struct {
	q    []T
	head int
}

func (f *fifo[T]) push(v T) { f.q = append(f.q, v) }

// len is how many wait.
func (f *fifo[T]) len() int { return len(f.q) - f.head }

// front is the first waiting; only when len() > 0.
func (f *fifo[T]) front() *T { return &f.q[f.head] }

// pop drops the first waiting; only when len() > 0.
func (f *fifo[T]) pop() {
	var zero T
	f.q[f.head] = zero
	f.head++
	switch {
	case f.head == len(f.q):
		f.q, f.head = f.q[:0], 0
	case f.head > 1024 && f.head > len(f.q)/2:
		n := copy(f.q, f.q[f.head:])
		clear(f.q[n:])
		f.q, f.head = f.q[:n], 0
	}
}

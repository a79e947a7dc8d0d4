// evnats patch 2: a task queue that allocates nothing per task.

package queue

import (
	"sync"
	"sync/atomic"
)

// sliceQueue is an AsyncTaskQueue kept in a slice under a mutex. Unlike
// lockFreeQueue, which allocates a node for every Enqueue, it reuses its
// slice once drained, so waking an event loop with a task allocates
// nothing in steady state. Producers hold the mutex only to append; the
// poller (the single consumer) only to take one task.
type sliceQueue struct {
	mu     sync.Mutex
	tasks  []*Task
	head   int // tasks[head:] are queued
	length atomic.Int32
}

// NewSliceQueue instantiates and returns a sliceQueue.
func NewSliceQueue() AsyncTaskQueue { return &sliceQueue{} }

// Enqueue adds task at the tail. Safe for concurrent use.
func (q *sliceQueue) Enqueue(task *Task) {
	q.mu.Lock()
	q.tasks = append(q.tasks, task)
	q.mu.Unlock()
	q.length.Add(1)
}

// Dequeue removes and returns the task at the head, or nil when empty.
func (q *sliceQueue) Dequeue() *Task {
	q.mu.Lock()
	if q.head == len(q.tasks) {
		q.mu.Unlock()
		return nil
	}
	t := q.tasks[q.head]
	q.tasks[q.head] = nil
	q.head++
	if q.head == len(q.tasks) { // drained: reuse the slice from its start
		q.tasks, q.head = q.tasks[:0], 0
	}
	q.mu.Unlock()
	q.length.Add(-1)
	return t
}

// IsEmpty reports whether the queue is empty.
func (q *sliceQueue) IsEmpty() bool { return q.length.Load() <= 0 }

// Length returns the number of queued tasks.
func (q *sliceQueue) Length() int32 { return q.length.Load() }

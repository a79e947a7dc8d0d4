package mqtt

import (
	"sync"
	"testing"
	"time"

	"github.com/evnats/evnats/jetstream/store"
)

// TestPersisterCloseWhileCallbackWaits: Close does not depend on shutdown
// order. A writer callback waits for a connection's lock whose holder is
// about to journal (take the Persister's lock); Close must still finish,
// where holding mu across its wait for the writer deadlocked.
func TestPersisterCloseWhileCallbackWaits(t *testing.T) {
	p, err := OpenPersister(t.TempDir(), nil, store.SyncPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	var conn sync.Mutex // stands for a connection's lock, as AfterWrites callbacks take it
	conn.Lock()
	p.AfterWrites(func() { conn.Lock(); conn.Unlock() }) // the writer now waits for conn
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	// Give Close the time to take mu if it is going to hold it while it
	// waits for the writer (the old order); nothing signals that it has.
	for deadline := time.Now().Add(200 * time.Millisecond); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if !p.mu.TryLock() {
			break
		}
		p.mu.Unlock()
	}
	go func() { // the connection, holding its lock, touches the Persister
		_ = p.ForgetQueued(1)
		conn.Unlock()
	}()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close deadlocked with a writer callback waiting for a lock whose holder waits for the Persister")
	}
}

package jetstream_test

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/loop"
	"github.com/nats-io/nats.go/jetstream"
)

// fullDisk is an OS file system whose block writes fail once a byte budget
// is spent, as a full disk does.
type fullDisk struct {
	store.OSFS
	mu     sync.Mutex
	budget int
}

type fullDiskFile struct {
	store.File
	d *fullDisk
}

func (d *fullDisk) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	f, err := d.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{File: f, d: d}, nil
}

func (f *fullDiskFile) Write(p []byte) (int, error) {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if len(p) > f.d.budget {
		return 0, errors.New("no space left on device")
	}
	f.d.budget -= len(p)
	return f.File.Write(p)
}

// TestFullDiskGivesPublishersClearErrors: when the disk fills, publishers
// get an error that says so, nothing unacknowledged is stored, and after a
// restart with space every acknowledged message is there.
func TestFullDiskGivesPublishersClearErrors(t *testing.T) {
	dir := t.TempDir()
	s := startJS(t, loop.Options{StoreDir: dir, JetStreamFS: &fullDisk{budget: 20 << 10}})
	_, js := connectJS(t, s)
	c := ctx(t)
	if _, err := js.CreateStream(c, jetstream.StreamConfig{Name: "F"}); err != nil {
		t.Fatal(err)
	}
	acked := 0
	var failure error
	for i := 0; i < 100 && failure == nil; i++ {
		if _, err := js.Publish(c, "F", make([]byte, 512)); err != nil {
			failure = err
		} else {
			acked++
		}
	}
	var apiErr *jetstream.APIError
	if !errors.As(failure, &apiErr) || apiErr.ErrorCode != 10077 || !strings.Contains(apiErr.Description, "no space left on device") {
		t.Fatalf("after %d acks: %v", acked, failure)
	}
	if _, err := js.Publish(c, "F", []byte("x")); err == nil {
		t.Fatal("a broken store accepted another message")
	}
	s.Shutdown()

	s2 := startJS(t, loop.Options{StoreDir: dir})
	_, js2 := connectJS(t, s2)
	st, _ := js2.Stream(c, "F")
	info, _ := st.Info(c)
	if int(info.State.Msgs) != acked || acked == 0 {
		t.Fatalf("%d acked before the disk filled, %d stored after restart", acked, info.State.Msgs)
	}
}

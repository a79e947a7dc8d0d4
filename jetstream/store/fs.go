package store

// Concurrency: OSFS is stateless; a File is used by one goroutine at a time
// (the Writer for writes and syncs, the store's owner for reads).

import (
	"io"
	"os"
	"sort"
)

// FS is the file system the file store and JetStream's metadata use; tests
// substitute one that fails on purpose (full disk, short writes) or loses
// what was not synced (storetest.CrashFS).
type FS interface {
	MkdirAll(dir string) error
	// OpenFile opens name as os.OpenFile does.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	ReadFile(name string) ([]byte, error)
	Remove(name string) error
	// RemoveAll removes path and anything under it; a missing path is no error.
	RemoveAll(path string) error
	// Rename renames oldpath to newpath, replacing newpath atomically.
	Rename(oldpath, newpath string) error
	// SyncDir fsyncs directory dir, making the entries created, renamed or
	// removed in it durable.
	SyncDir(dir string) error
	// ReadDir returns the names in dir, sorted.
	ReadDir(dir string) ([]string, error)
}

// File is an open file of an FS.
type File interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Close() error
}

// OSFS is the operating system's file system.
type OSFS struct{}

func (OSFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }
func (OSFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return os.OpenFile(name, flag, perm)
}
func (OSFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }
func (OSFS) Remove(name string) error             { return os.Remove(name) }
func (OSFS) RemoveAll(path string) error          { return os.RemoveAll(path) }
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (OSFS) SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
func (OSFS) ReadDir(dir string) ([]string, error) {
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(es))
	for _, e := range es {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names, nil
}

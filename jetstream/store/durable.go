package store

// Concurrency: stateless functions over an FS; the caller owns the paths
// (JetStream's Manager goroutine for stream and consumer metadata).

import (
	"errors"
	"os"
	"path/filepath"
)

// TempSuffix marks a file WriteFileDurable has not finished: recovery
// ignores and removes it.
const TempSuffix = ".tmp"

// WriteFileDurable replaces dir/name with data so that a crash at any
// moment, power loss included, leaves either the old file or the new one
// whole, never a torn one: write name.tmp, fsync it, rename it over name,
// fsync dir. When it returns nil the new file is durable.
func WriteFileDurable(fs FS, dir, name string, data []byte) error {
	tmp := filepath.Join(dir, name+TempSuffix)
	f, err := fs.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := f.Write(data)
	if err == nil && n < len(data) {
		err = errShortWrite
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	if err := fs.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(dir)
}

// MkdirDurable creates dir and any missing parents, then fsyncs every
// directory from dir's parent up to top (an ancestor of dir) so that the
// new entries survive a power loss. top itself is synced; its own entry
// is the caller's concern.
func MkdirDurable(fs FS, dir, top string) error {
	dir, top = filepath.Clean(dir), filepath.Clean(top)
	if err := fs.MkdirAll(dir); err != nil {
		return err
	}
	for p := dir; p != top; {
		parent := filepath.Dir(p)
		if parent == p {
			return errors.New("store: " + top + " is not above " + dir)
		}
		if err := fs.SyncDir(parent); err != nil {
			return err
		}
		p = parent
	}
	return nil
}

// RemoveAllDurable deletes dir as one durable step: it renames dir into
// trash (a directory on the same file system, emptied on recovery) under
// the fresh name slot and fsyncs dir's parent, so after a crash dir is
// either whole or gone; then it removes the renamed tree, which needs no
// sync. A missing dir is no error.
func RemoveAllDurable(fs FS, dir, trash, slot string) error {
	if _, err := fs.ReadDir(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err // not a directory: nothing this store made, left alone
	}
	if err := fs.MkdirAll(trash); err != nil {
		return err
	}
	dst := filepath.Join(trash, slot)
	if err := fs.Rename(dir, dst); err != nil {
		return err
	}
	if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	_ = fs.RemoveAll(dst) // what is left is cleared on the next start
	return nil
}

// Package storetest gives tests of the stores a file system that crashes on
// purpose.
package storetest

// Concurrency: CrashFS and its files are safe for concurrent use; mu guards
// the whole tree (the Manager, the Writer and its syncer all reach it).

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/evnats/evnats/jetstream/store"
)

// ErrCrashed is what every change to a CrashFS returns from the injected
// crash until Restart: the process is dead and writes nothing more.
var ErrCrashed = errors.New("storetest: crashed")

// Op is one change made to a CrashFS.
type Op struct {
	Kind string // mkdir, create, truncate, write, sync, syncdir, rename, remove, removeall
	Path string
}

// CrashFS is an in-memory store.FS that keeps, beside what a running
// process sees, what a power loss would leave: a file's contents as of its
// last Sync and a directory's entries as of its last SyncDir. A test arms
// it to crash at the n-th counted change (that change fails; a write is
// torn, half of it landing), after which every change fails, then restarts
// it with what a kill -9 leaves (everything done before the crash) or what
// a power loss leaves (only what was synced).
type CrashFS struct {
	mu      sync.Mutex
	root    *node
	count   func(Op) bool // which changes are counted; nil counts all
	ops     []Op          // counted changes since Arm
	crashAt int           // 1-based index into counted changes; 0 never
	crashed bool
}

type node struct {
	dir bool
	// A directory's entries: live is what the process sees, durable what
	// survives a power loss.
	live, durable map[string]*node
	// A file's contents, seen and synced.
	data, synced []byte
}

func newDir() *node {
	return &node{dir: true, live: map[string]*node{}, durable: map[string]*node{}}
}

// NewCrashFS returns an empty file system in which root and its parents
// exist durably.
func NewCrashFS(root string) *CrashFS {
	fs := &CrashFS{root: newDir()}
	n := fs.root
	for _, e := range split(root) {
		c := newDir()
		n.live[e], n.durable[e] = c, c
		n = c
	}
	return fs
}

func split(p string) []string {
	p = filepath.ToSlash(filepath.Clean(p))
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" && e != "." {
			out = append(out, e)
		}
	}
	return out
}

// Arm counts the changes op selects from now on and crashes at the n-th
// (0: never).
func (fs *CrashFS) Arm(n int, count func(Op) bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.ops, fs.crashAt, fs.count, fs.crashed = nil, n, count, false
}

// Ops returns the counted changes since Arm.
func (fs *CrashFS) Ops() []Op {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]Op(nil), fs.ops...)
}

// Crashed reports whether the armed crash has happened.
func (fs *CrashFS) Crashed() bool {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.crashed
}

// Restart ends a crash: with powerLoss the tree becomes what was synced,
// otherwise it stays as the process left it. Counting stops.
func (fs *CrashFS) Restart(powerLoss bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if powerLoss {
		revert(fs.root)
	}
	fs.crashed, fs.crashAt, fs.count = false, 0, nil
}

func revert(n *node) {
	if !n.dir {
		n.data = append([]byte(nil), n.synced...)
		return
	}
	n.live = make(map[string]*node, len(n.durable))
	for name, c := range n.durable {
		n.live[name] = c
		revert(c)
	}
}

// change accounts for a change about to be made: it fails once crashed,
// and is the crash when it is the armed one. Called with mu held.
func (fs *CrashFS) change(kind, path string) error {
	if fs.crashed {
		return ErrCrashed
	}
	op := Op{kind, filepath.Clean(path)}
	if fs.count != nil && !fs.count(op) {
		return nil
	}
	fs.ops = append(fs.ops, op)
	if len(fs.ops) == fs.crashAt {
		fs.crashed = true
		return ErrCrashed
	}
	return nil
}

func notExist(op, path string) error {
	return &os.PathError{Op: op, Path: path, Err: os.ErrNotExist}
}

// lookup finds path's node in the live tree.
func (fs *CrashFS) lookup(path string) *node {
	n := fs.root
	for _, e := range split(path) {
		if !n.dir {
			return nil
		}
		if n = n.live[e]; n == nil {
			return nil
		}
	}
	return n
}

// parent finds the live directory that holds path, and path's base name.
func (fs *CrashFS) parent(path string) (*node, string) {
	d := fs.lookup(filepath.Dir(filepath.Clean(path)))
	if d == nil || !d.dir {
		return nil, ""
	}
	return d, filepath.Base(path)
}

func (fs *CrashFS) MkdirAll(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n, path := fs.root, "/"
	for _, e := range split(dir) {
		path = filepath.Join(path, e)
		c := n.live[e]
		if c == nil {
			if err := fs.change("mkdir", path); err != nil {
				return err
			}
			c = newDir()
			n.live[e] = c
		} else if !c.dir {
			return &os.PathError{Op: "mkdir", Path: dir, Err: errors.New("not a directory")}
		}
		n = c
	}
	return nil
}

func (fs *CrashFS) OpenFile(name string, flag int, perm os.FileMode) (store.File, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, base := fs.parent(name)
	if d == nil {
		return nil, notExist("open", name)
	}
	n := d.live[base]
	if n == nil {
		if flag&os.O_CREATE == 0 {
			return nil, notExist("open", name)
		}
		if err := fs.change("create", name); err != nil {
			return nil, err
		}
		n = &node{}
		d.live[base] = n
	} else if n.dir {
		return nil, &os.PathError{Op: "open", Path: name, Err: errors.New("is a directory")}
	}
	if flag&os.O_TRUNC != 0 && len(n.data) > 0 {
		if err := fs.change("truncate", name); err != nil {
			return nil, err
		}
		n.data = nil
	}
	return &crashFile{fs: fs, n: n, name: filepath.Clean(name), appendOnly: flag&os.O_APPEND != 0}, nil
}

func (fs *CrashFS) ReadFile(name string) ([]byte, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.lookup(name)
	if n == nil || n.dir {
		return nil, notExist("read", name)
	}
	return append([]byte(nil), n.data...), nil
}

func (fs *CrashFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, base := fs.parent(name)
	if d == nil || d.live[base] == nil {
		return notExist("remove", name)
	}
	if n := d.live[base]; n.dir && len(n.live) > 0 {
		return &os.PathError{Op: "remove", Path: name, Err: errors.New("directory not empty")}
	}
	if err := fs.change("remove", name); err != nil {
		return err
	}
	delete(d.live, base)
	return nil
}

func (fs *CrashFS) RemoveAll(path string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	d, base := fs.parent(path)
	if d == nil || d.live[base] == nil {
		return nil
	}
	if err := fs.change("removeall", path); err != nil {
		return err
	}
	delete(d.live, base)
	return nil
}

func (fs *CrashFS) Rename(oldpath, newpath string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	od, obase := fs.parent(oldpath)
	nd, nbase := fs.parent(newpath)
	if od == nil || od.live[obase] == nil || nd == nil {
		return notExist("rename", oldpath)
	}
	if err := fs.change("rename", newpath); err != nil {
		return err
	}
	nd.live[nbase] = od.live[obase]
	delete(od.live, obase)
	return nil
}

func (fs *CrashFS) SyncDir(dir string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.lookup(dir)
	if n == nil || !n.dir {
		return notExist("sync", dir)
	}
	if err := fs.change("syncdir", dir); err != nil {
		return err
	}
	n.durable = make(map[string]*node, len(n.live))
	for name, c := range n.live {
		n.durable[name] = c
	}
	return nil
}

func (fs *CrashFS) ReadDir(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	n := fs.lookup(dir)
	if n == nil {
		return nil, notExist("readdir", dir)
	}
	if !n.dir {
		return nil, &os.PathError{Op: "readdir", Path: dir, Err: errors.New("not a directory")}
	}
	names := make([]string, 0, len(n.live))
	for name := range n.live {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// crashFile is an open file of a CrashFS; it keeps its node across renames
// and removals, as an open descriptor does.
type crashFile struct {
	fs         *CrashFS
	n          *node
	name       string
	off        int64
	appendOnly bool
}

func (f *crashFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.appendOnly {
		f.off = int64(len(f.n.data))
	}
	wasCrashed := f.fs.crashed
	err := f.fs.change("write", f.name)
	if err != nil {
		if wasCrashed {
			return 0, err
		}
		p = p[:len(p)/2] // the crash tears this write
	}
	if end := f.off + int64(len(p)); end > int64(len(f.n.data)) {
		f.n.data = append(f.n.data, make([]byte, end-int64(len(f.n.data)))...)
	}
	copy(f.n.data[f.off:], p)
	f.off += int64(len(p))
	return len(p), err
}

func (f *crashFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *crashFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.change("sync", f.name); err != nil {
		return err
	}
	f.n.synced = append([]byte(nil), f.n.data...)
	return nil
}

func (f *crashFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.fs.change("truncate", f.name); err != nil {
		return err
	}
	if size < int64(len(f.n.data)) {
		f.n.data = f.n.data[:size]
	} else {
		f.n.data = append(f.n.data, make([]byte, size-int64(len(f.n.data)))...)
	}
	return nil
}

func (f *crashFile) Close() error { return nil }

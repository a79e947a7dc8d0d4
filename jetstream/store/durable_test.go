package store_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/evnats/evnats/jetstream/store"
	"github.com/evnats/evnats/jetstream/store/storetest"
)

// TestWriteFileDurableAtEveryCrash replaces a file and crashes at each of
// its changes (temp created, written (torn), synced, renamed, directory
// synced): after a kill or a power loss the file is the old one or the new
// one, whole; once the call returned nil, the new one.
func TestWriteFileDurableAtEveryCrash(t *testing.T) {
	old, next := []byte(`{"v":1}`), []byte(`{"v":2,"pad":"xxxxxxxxxxxxxxxx"}`)
	for _, powerLoss := range []bool{false, true} {
		for n := 1; ; n++ {
			fs := storetest.NewCrashFS("/r")
			if err := store.MkdirDurable(fs, "/r/d", "/r"); err != nil {
				t.Fatal(err)
			}
			if err := store.WriteFileDurable(fs, "/r/d", "meta.json", old); err != nil {
				t.Fatal(err)
			}
			fs.Arm(n, nil)
			err := store.WriteFileDurable(fs, "/r/d", "meta.json", next)
			if !fs.Crashed() {
				if n < 5 {
					t.Fatalf("only %d changes: %v", n-1, fs.Ops())
				}
				fs.Restart(true) // a power loss right after it returned
				if got, _ := fs.ReadFile("/r/d/meta.json"); err != nil || !bytes.Equal(got, next) {
					t.Fatalf("power loss after success (%v): %q", err, got)
				}
				break
			}
			fs.Restart(powerLoss)
			got, rerr := fs.ReadFile("/r/d/meta.json")
			switch {
			case rerr != nil:
				t.Fatalf("crash at %d (%v), power loss %v: meta.json gone: %v", n, fs.Ops()[n-1], powerLoss, rerr)
			case err == nil && !bytes.Equal(got, next):
				t.Fatalf("crash at %d after success, power loss %v: %q", n, powerLoss, got)
			case !bytes.Equal(got, old) && !bytes.Equal(got, next):
				t.Fatalf("crash at %d (%v), power loss %v: torn %q", n, fs.Ops()[n-1], powerLoss, got)
			}
		}
	}
}

// TestRemoveAllDurableAtEveryCrash: a directory being removed is whole or
// gone after a crash at any of its changes, and gone once the call
// returned nil.
func TestRemoveAllDurableAtEveryCrash(t *testing.T) {
	for _, powerLoss := range []bool{false, true} {
		for n := 1; ; n++ {
			fs := storetest.NewCrashFS("/r")
			for _, f := range []string{"/r/s/meta.json", "/r/s/obs/c/meta.json"} {
				if err := store.MkdirDurable(fs, filepath.Dir(f), "/r"); err != nil {
					t.Fatal(err)
				}
				if err := store.WriteFileDurable(fs, filepath.Dir(f), filepath.Base(f), []byte("x")); err != nil {
					t.Fatal(err)
				}
			}
			fs.Arm(n, nil)
			err := store.RemoveAllDurable(fs, "/r/s", "/r/trash", "1")
			if !fs.Crashed() {
				fs.Restart(true) // a power loss right after it returned
				if _, e := fs.ReadFile("/r/s/meta.json"); err != nil || e == nil {
					t.Fatalf("power loss after success (%v): the directory is back", err)
				}
				break
			}
			fs.Restart(powerLoss)
			_, e1 := fs.ReadFile("/r/s/meta.json")
			_, e2 := fs.ReadFile("/r/s/obs/c/meta.json")
			if (e1 == nil) != (e2 == nil) || (err == nil && e1 == nil) {
				t.Fatalf("crash at %d (%v), power loss %v, returned %v: stream %v, consumer %v", n, fs.Ops()[n-1], powerLoss, err, e1, e2)
			}
		}
	}
}

package main

import (
	"os"
	"sync"

	"github.com/evnats/evnats/loop/tlstest"
)

var (
	tlsOnce  sync.Once
	tlsFiles tlstest.Files
	tlsErr   error
	tlsDir   string // removed by removeBenchTLS
)

// benchTLS writes, once per run, the certificates TLS rows start both
// servers with (same certificate, ECDSA P-256) and sets rootCA.
func benchTLS() (tlstest.Files, error) {
	tlsOnce.Do(func() {
		if tlsDir, tlsErr = os.MkdirTemp("", "evbench-tls-"); tlsErr != nil {
			return
		}
		tlsFiles, tlsErr = tlstest.Write(tlsDir)
		rootCA = tlsFiles.CA
	})
	return tlsFiles, tlsErr
}

// removeBenchTLS deletes the certificates benchTLS wrote, at the end of a
// run (servers are stopped by then).
func removeBenchTLS() {
	if tlsDir != "" {
		_ = os.RemoveAll(tlsDir)
	}
}

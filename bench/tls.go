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
)

// benchTLS writes, once per run, the certificates TLS rows start both
// servers with (same certificate, ECDSA P-256) and sets rootCA.
func benchTLS() (tlstest.Files, error) {
	tlsOnce.Do(func() {
		var dir string
		if dir, tlsErr = os.MkdirTemp("", "evbench-tls-"); tlsErr != nil {
			return
		}
		tlsFiles, tlsErr = tlstest.Write(dir)
		rootCA = tlsFiles.CA
	})
	return tlsFiles, tlsErr
}

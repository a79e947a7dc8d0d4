package jetstream

// Concurrency: runs on the Manager goroutine, and on the store Writer's
// goroutine for a failed write's PubAck; it reads only storeRoots, fixed at
// Start.

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// publicErr is err's text for an error description: file errors lose
// their path (a client learns nothing from where the server keeps data,
// and must not). Any other text still holds whatever err said; it reaches
// a client only through public, which cuts the store directory out of every
// description once.
func (m *Manager) publicErr(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Op + ": " + pe.Err.Error()
	case errors.As(err, &le):
		return le.Op + ": " + le.Err.Error()
	}
	return err.Error()
}

// public makes e fit for a client: the one place a description is
// redacted, on every way an error leaves the Manager (fail for API
// replies, publish for PubAcks). Fixed texts from the error table need not
// pass here.
func (m *Manager) public(e *APIError) *APIError {
	if e != nil {
		e.Description = m.redact(e.Description)
	}
	return e
}

// redact cuts the store directory out of a text bound for a client, where
// it starts a path (at the start or after a space, quote or colon).
func (m *Manager) redact(s string) string {
	for _, d := range m.storeRoots {
		cut := "<store>"
		if strings.HasSuffix(d, string(filepath.Separator)) {
			cut += string(filepath.Separator)
		}
		for from := 0; ; {
			i := strings.Index(s[from:], d)
			if i < 0 {
				break
			}
			i += from
			if i > 0 && !strings.ContainsRune(" \t\"'(:=", rune(s[i-1])) {
				from = i + len(d)
				continue
			}
			s = s[:i] + cut + s[i+len(d):]
			from = i + len(cut)
		}
	}
	return s
}

// storeRootsOf lists the spellings of the store directory that may start a
// path in an error, longest first: absolute, and as configured (only
// where a path follows, so that a short relative name is not cut from words).
func storeRootsOf(dir string) []string {
	var roots []string
	if abs, err := filepath.Abs(dir); err == nil && abs != string(filepath.Separator) {
		roots = append(roots, abs)
	}
	if c := filepath.Clean(dir); c != "." && (len(roots) == 0 || c != roots[0]) {
		roots = append(roots, c+string(filepath.Separator))
	}
	return roots
}

package jetstream

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// publicErr is err's text as a client may see it. File errors lose their
// path (a client learns nothing from where the server keeps data, and must
// not); any other text has the store directory cut out.
func (m *Manager) publicErr(err error) string {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Op + ": " + pe.Err.Error()
	case errors.As(err, &le):
		return le.Op + ": " + le.Err.Error()
	}
	return m.redact(err.Error())
}

// redact cuts the store directory out of a text bound for a client.
func (m *Manager) redact(s string) string {
	for _, d := range m.storeRoots {
		if strings.Contains(s, d) {
			s = strings.ReplaceAll(s, d, "<store>")
		}
	}
	return s
}

// storeRootsOf lists the spellings of the store directory that may appear
// in an error: absolute first, so that the longest match is cut.
func storeRootsOf(dir string) []string {
	var roots []string
	if abs, err := filepath.Abs(dir); err == nil && len(abs) > 1 {
		roots = append(roots, abs)
	}
	if c := filepath.Clean(dir); strings.ContainsRune(c, filepath.Separator) && (len(roots) == 0 || c != roots[0]) {
		roots = append(roots, c)
	}
	return roots
}

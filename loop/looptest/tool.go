package looptest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tool returns the absolute path of an external client a test drives: the
// first of paths that exists, else name on PATH. Without it the test
// skips with hint, unless EVNATS_REQUIRE_TOOLS=1 (CI installs the tools),
// where it fails.
func Tool(t *testing.T, name, hint string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if p == "" {
			continue
		}
		if abs, err := filepath.Abs(p); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("EVNATS_REQUIRE_TOOLS") == "1" {
		t.Fatalf("%s not found, and EVNATS_REQUIRE_TOOLS=1 (%s)", name, hint)
	}
	t.Skipf("%s not found: %s", name, hint)
	return ""
}

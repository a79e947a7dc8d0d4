package looptest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// NodeScript runs one of the Node.js client scripts in looptest/node
// (nats.js, MQTT.js: real clients of other languages, unmodified) with
// args, and fails the test with the script's output if it exits non-zero.
// Without node or the installed packages (`npm ci` in looptest/node, which
// .ci/run does) the test skips, or fails under EVNATS_REQUIRE_TOOLS=1.
func NodeScript(t *testing.T, script string, args ...string) {
	t.Helper()
	node := Tool(t, "node", "install Node.js 20 or later")
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules")); err != nil {
		if os.Getenv("EVNATS_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s/node_modules missing, and EVNATS_REQUIRE_TOOLS=1 (run npm ci there)", dir)
		}
		t.Skipf("%s/node_modules missing: run npm ci there", dir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node %s %v: %v\n%s", script, args, err, out)
	}
	t.Logf("node %s:\n%s", script, out)
}

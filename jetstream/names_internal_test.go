package jetstream

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidName(t *testing.T) {
	for _, n := range []string{"S", "KV_bucket", "OBJ_x", "a-b_c", "ÄÖ", strings.Repeat("n", maxNameLen)} {
		if !validName(n) {
			t.Errorf("%q refused", n)
		}
	}
	for _, n := range []string{"", ".", "..", "a.b", "a*", "a>", "a/b", `a\b`, "a b", "a\tb", "a\x00b", "a\x7fb", "a\nb", "S\xff",
		strings.Repeat("n", maxNameLen+1)} {
		if validName(n) {
			t.Errorf("%q accepted", n)
		}
	}
}

// TestStorePathStaysInside: whatever the elements, a path is either strictly
// inside the root or refused.
func TestStorePathStaysInside(t *testing.T) {
	root := filepath.Join(t.TempDir(), "store")
	if p, err := storePath(root, "S", "obs", "D"); err != nil || p != filepath.Join(root, "S", "obs", "D") {
		t.Fatalf("plain path: %q %v", p, err)
	}
	for _, elems := range [][]string{{".."}, {"."}, {""}, {"S", ".."}, {"../x"}, {"a/../../x"}, {`..\x`}, {"S", "obs", ".."},
		{"a\x00"}, {}} {
		if p, err := storePath(root, elems...); err == nil {
			t.Errorf("%q: got %q, want refused", elems, p)
		}
	}
}

// TestAckWaitWithZeroDeliveries: a replayed log may record 0 deliveries;
// the backoff lookup must not index -1.
func TestAckWaitWithZeroDeliveries(t *testing.T) {
	c := &consumer{cfg: ConsumerConfig{BackOff: []time.Duration{time.Second, 2 * time.Second}}}
	if d := c.ackWait(0); d != time.Second {
		t.Fatalf("ackWait(0) = %v", d)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ dir, in, want string }{
		{"/var/lib/evnats/data", "store: read /var/lib/evnats/data/jetstream/x.blk at 4: EOF", "store: read <store>/jetstream/x.blk at 4: EOF"},
		{"./data", "corrupt: sequence 3 in data/jetstream/x.blk", "corrupt: sequence 3 in <store>/jetstream/x.blk"},
		{"./data", "metadata/x and data", "metadata/x and data"},
		{"data", "open data: no such file", "open data: no such file"},
		{"/srv/d", "mkdir /srv/d: denied", "mkdir <store>: denied"},
	} {
		m := &Manager{storeRoots: storeRootsOf(tc.dir)}
		if got := m.redact(tc.in); got != tc.want {
			t.Errorf("redact(%q) with store %s = %q, want %q", tc.in, tc.dir, got, tc.want)
		}
	}
}

package jetstream

import (
	"math/rand"
	"strings"
	"testing"

	"github.com/evnats/evnats/router"
)

// TestStreamTransformRandom compiles random transforms, hostile tokens
// included, and applies the valid ones to random subjects: nothing
// panics, and what a matched subject becomes is a valid literal subject.
func TestStreamTransformRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	toks := []string{"a", "b", "*", ">", "$1", "$2", "$0", "$-1", "$99999999999999999999", "{{wildcard(1)}}",
		"{{ Wildcard ( 2 ) }}", "{{wildcard()}}", "{{partition(2,1)}}", "{{nosuch}}", "{{", "}}", "", " ", "x\ty", "é"}
	pick := func(n int) string {
		parts := make([]string, 1+rng.Intn(n))
		for i := range parts {
			parts[i] = toks[rng.Intn(len(toks))]
		}
		return strings.Join(parts, ".")
	}
	compiled := 0
	for range 20000 {
		src, dest := pick(4), pick(4)
		tr, reason := streamTransform(src, dest)
		if tr == nil {
			if reason == "" {
				t.Fatalf("%q -> %q: refused without a reason", src, dest)
			}
			continue
		}
		compiled++
		for range 5 {
			subj := strings.NewReplacer("*", "w", ">", "r.s", "$", "d", "{", "c", "}", "c", " ", "_", "\t", "_").Replace(pick(6))
			if !router.ValidLiteralSubject(subj) {
				continue
			}
			if out, ok := tr.apply(subj); ok && !router.ValidLiteralSubject(out) {
				t.Fatalf("%q -> %q on %q gave %q", src, dest, subj, out)
			}
		}
	}
	if compiled == 0 {
		t.Fatal("no transform compiled: the test tests nothing")
	}
}

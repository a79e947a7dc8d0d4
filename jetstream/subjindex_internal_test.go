package jetstream

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/evnats/evnats/router"
)

// randomSubject makes a valid subject of 1-4 tokens from a small alphabet,
// with '*' and a final '>' often enough that most kinds of collision occur.
func randomSubject(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	toks := make([]string, n)
	for i := range toks {
		switch k := r.IntN(10); {
		case k == 0:
			toks[i] = "*"
		case k == 1 && i == n-1:
			toks[i] = ">"
		default:
			toks[i] = string(rune('a' + r.IntN(3)))
		}
	}
	return strings.Join(toks, ".")
}

// TestSubjectIndexMatchesPairwise checks the index against the naive
// reference, router.SubjectsCollide over every indexed subject, on random
// owners and subjects, through additions, replacements and removals.
func TestSubjectIndexMatchesPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := newSubjectIndex()
	owned := map[string][]string{}
	owners := []string{"A", "B", "C", "D"}
	for round := range 3000 {
		o := owners[r.IntN(len(owners))]
		var subs []string
		if r.IntN(5) > 0 {
			for range r.IntN(5) {
				subs = append(subs, randomSubject(r))
			}
		}
		x.set(o, subs)
		owned[o] = subs
		for range 20 {
			q, self := randomSubject(r), owners[r.IntN(len(owners))]
			if r.IntN(4) == 0 {
				self = ""
			}
			want := false
			for owner, list := range owned {
				if owner != self && collidesAny(q, list) {
					want = true
				}
			}
			if got := x.collides(q, self); got != want {
				t.Fatalf("round %d: collides(%q, %q) = %v, want %v; index holds %v", round, q, self, got, want, owned)
			}
		}
	}
	for _, o := range owners {
		x.set(o, nil)
	}
	if len(x.root.lits) != 0 || x.root.pwc != nil || x.root.fwc != nil || len(x.root.below) != 0 {
		t.Fatalf("index not empty after every owner was removed: %+v", x.root)
	}
}

// TestFirstSelfOverlapMatchesPairwise checks that the O(n) search reports
// the pair nats-server's pairwise loop reports first.
func TestFirstSelfOverlapMatchesPairwise(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := range 5000 {
		subs := make([]string, 1+r.IntN(8))
		for i := range subs {
			subs[i] = randomSubject(r)
		}
		wi, wj := -1, -1
	pairs:
		for i := range subs {
			for j := i + 1; j < len(subs); j++ {
				if router.SubjectsCollide(subs[j], subs[i]) {
					wi, wj = i, j
					break pairs
				}
			}
		}
		if gi, gj := firstSelfOverlap(subs, router.SubjectsCollide); gi != wi || gj != wj {
			t.Fatalf("round %d: %v: got (%d,%d), want (%d,%d)", round, subs, gi, gj, wi, wj)
		}
	}
}

// manySubjects is n distinct literal subjects under prefix.
func manySubjects(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s.%d.x", prefix, i)
	}
	return out
}

// BenchmarkStreamCreateManySubjects creates and deletes a memory stream of
// 60,000 subjects beside one of 60,000 others, through the Manager's
// queue: the create checks its own subjects for overlaps and each against
// the other stream's (with pairwise checks, over a minute per create).
//
//	go test -run '^$' -bench StreamCreateManySubjects -benchtime 5x ./jetstream/
func BenchmarkStreamCreateManySubjects(b *testing.B) {
	const n = 60000
	h := newFakeHost()
	m, err := Start(Config{StoreDir: b.TempDir()}, h)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Stop()
	cfg := func(name string, subs []string) string {
		return fmt.Sprintf(`{"name":%q,"storage":"memory","subjects":["%s"]}`, name, strings.Join(subs, `","`))
	}
	h.call(b, "$JS.API.>", "$JS.API.STREAM.CREATE.A", "r.a", cfg("A", manySubjects("a", n)))
	if len(m.streams) != 1 {
		b.Fatal("stream A not created")
	}
	create := cfg("B", append(manySubjects("b", n-1), "a.*.y"))
	b.ResetTimer()
	for range b.N {
		h.call(b, "$JS.API.>", "$JS.API.STREAM.CREATE.B", "r.b", create)
		h.call(b, "$JS.API.>", "$JS.API.STREAM.DELETE.B", "r.d", "")
	}
}

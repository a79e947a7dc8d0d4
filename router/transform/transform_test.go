package transform

import (
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// cases are transforms and subjects both servers are given; random is
// compared separately because its output is not deterministic.
var cases = []struct {
	src, dest string
	subjects  []string
}{
	{"foo.*", "bar.$1", []string{"foo.a", "foo.a.b", "bar.a"}},
	{"foo.*.*", "bar.{{wildcard(2)}}.{{ Wildcard( 1 ) }}", []string{"foo.a.b"}},
	{"foo.>", "bar.>", []string{"foo.a", "foo.a.b.c", "foo"}},
	{">", ">", []string{"a", "a.b"}},
	{"", "x.>", []string{"a.b"}},
	{"a.*.>", "b.$1.>", []string{"a.x.y.z", "a.x"}},
	{"p.*", "p.{{partition(10,1)}}.$1", []string{"p.a", "p.bb", "p.customer-42"}},
	{"p.*.*", "{{partition(7,1,2)}}", []string{"p.a.b", "p.c.d"}},
	{"p.*", "q.{{partition(5)}}", []string{"p.abc", "p.xyz"}},
	{"plain", "q.{{partition(5)}}", []string{"plain"}},
	{"plain", "q.{{partition(5,1)}}", []string{"plain"}},
	{"s.*", "{{splitFromLeft(1,2)}}", []string{"s.abcdef", "s.ab", "s.a"}},
	{"s.*", "{{SplitFromRight(1,2)}}", []string{"s.abcdef", "s.ab", "s.a"}},
	{"s.*", "x.{{sliceFromLeft(1,3)}}", []string{"s.abcdefg", "s.abcdef", "s.ab", "s.abc"}},
	{"s.*", "x.{{slicefromright(1,3)}}", []string{"s.abcdefg", "s.abcdef", "s.ab", "s.abcd"}},
	{"s.*", "x.{{split(1,-)}}.y", []string{"s.a-b-c", "s.a--b", "s.-a", "s.a-", "s.abc"}},
	{"s.*", "x.{{split(1,ab)}}", []string{"s.1ab2ab3", "s.ab1"}},
	{"s.*", "{{left(1,2)}}.{{right(1,2)}}", []string{"s.abcdef", "s.a"}},
	{"s.*.>", "{{Left(1,0)}}.{{wildcard(1)}}.>", []string{"s.abc.d.e"}},
	{"$x.*", "$y.$1", []string{"$x.a"}},
}

// badCases are destinations both servers refuse, with the same words.
var badCases = [][2]string{
	{"foo.*", "bar.$2"},
	{"foo.*", "bar.$0"},
	{"foo", "bar.$1"},
	{"foo", "bar.{{wildcard(1)}}"},
	{"foo.>", "bar.$1.>"},
	{"foo.*", "bar..$1"},
	{"foo.*", "bar.>.x"},
	{"foo.*", "bar.{{nope(1)}}"},
	{"foo.*", "bar.{{WILDCARD(1)}}"},
	{"foo.*", "bar.{{wildcard()}}"},
	{"foo.*", "bar.{{wildcard(1,2)}}"},
	{"foo.*", "bar.{{wildcard(x)}}"},
	{"foo.*", "bar.{{partition(x,1)}}"},
	{"foo.*", "bar.{{partition(3,x)}}"},
	{"foo.*", "bar.{{partition(3,2)}}"},
	{"foo.*", "bar.{{splitFromLeft(1)}}"},
	{"foo.*", "bar.{{splitFromLeft(1,2,3)}}"},
	{"foo.*", "bar.{{splitFromLeft(1,x)}}"},
	{"foo.*", "bar.{{splitFromLeft(2,1)}}"},
	{"foo.*", "bar.{{split(1)}}"},
	{"foo.*", "bar.{{split(1,a b)}}"},
	{"foo.*", "bar.{{random()}}"},
	{"foo.*", "bar.{{random(1,2)}}"},
	{"foo.*", "bar.a b"},
	{"foo.*", "bar.*"},
	{"foo.>", "bar"},
	{"foo", "bar.>"},
	{"foo.*", "bar.{{left(1,2)}}x"}, // a literal: accepted by both
}

// TestTransformDifferential: every case gives nats-server's subject, and
// every bad destination its error text.
func TestTransformDifferential(t *testing.T) {
	for _, c := range cases {
		ref, err := server.NewSubjectTransform(c.src, c.dest)
		if err != nil {
			t.Fatalf("nats-server refused %q -> %q: %v", c.src, c.dest, err)
		}
		tr, err := New(c.src, c.dest)
		if err != nil {
			t.Fatalf("%q -> %q: %v", c.src, c.dest, err)
		}
		for _, subj := range c.subjects {
			want, refErr := ref.Match(subj)
			got, ok := tr.Apply(subj)
			if refErr != nil {
				if ok {
					t.Errorf("%q -> %q on %q: got %q, nats-server: %v", c.src, c.dest, subj, got, refErr)
				}
				continue
			}
			if strings.Contains(want, "..") || strings.HasPrefix(want, ".") || strings.HasSuffix(want, ".") {
				// nats-server makes an invalid subject; evnats keeps it unmapped.
				if ok {
					t.Errorf("%q -> %q on %q: got %q, want no mapping (nats-server: %q)", c.src, c.dest, subj, got, want)
				}
				continue
			}
			if !ok || got != want {
				t.Errorf("%q -> %q on %q: got %q %v, want %q", c.src, c.dest, subj, got, ok, want)
			}
		}
	}
	for _, c := range badCases {
		refErr := server.ValidateMapping(c[0], c[1]) // the check nats-server runs on configs
		_, err := New(c[0], c[1])
		switch {
		case refErr == nil && err == nil:
		case refErr == nil || err == nil:
			if c[1] == "bar.$0" && refErr == nil {
				continue // nats-server takes $0 as the subject's first token; evnats refuses it
			}
			t.Errorf("%q -> %q: evnats %v, nats-server %v", c[0], c[1], err, refErr)
		case err.Error() != refErr.Error():
			t.Errorf("%q -> %q: evnats %q, nats-server %q", c[0], c[1], err, refErr)
		}
	}
}

// TestTransformRandom: random(p) stays below p and spreads over it.
func TestTransformRandom(t *testing.T) {
	tr, err := New("r.*", "r.{{random(4)}}.$1")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 400; i++ {
		got, ok := tr.Apply("r.x")
		if !ok {
			t.Fatal("no match")
		}
		parts := strings.Split(got, ".")
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 0 || n >= 4 || parts[2] != "x" {
			t.Fatalf("got %q", got)
		}
		seen[parts[1]] = true
	}
	if len(seen) != 4 {
		t.Fatalf("random(4) gave only %v", seen)
	}
}

// TestTransformAllocs: applying into a buffer allocates nothing.
func TestTransformAllocs(t *testing.T) {
	tr, err := New("orders.*.*", "o.{{partition(8,1)}}.{{splitFromLeft(2,2)}}.$1")
	if err != nil {
		t.Fatal(err)
	}
	subj, buf := []byte("orders.eu.abcdef"), make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf, _ = tr.Append(buf[:0], subj) }); n != 0 {
		t.Fatalf("%v allocations per Append", n)
	}
}

func FuzzTransform(f *testing.F) {
	for _, c := range cases {
		for _, s := range c.subjects {
			f.Add(c.src, c.dest, s)
		}
	}
	for _, c := range badCases {
		f.Add(c[0], c[1], "foo.a")
	}
	f.Fuzz(func(t *testing.T, src, dest, subject string) {
		tr, err := New(src, dest)
		if err != nil || tr == nil {
			return
		}
		if got, ok := tr.Apply(subject); ok && (got == "" || strings.Contains(got, "..")) {
			t.Fatalf("%q -> %q on %q gave %q", src, dest, subject, got)
		}
	})
}

// TestShape: a destination as the filter of what it can produce.
func TestShape(t *testing.T) {
	for dest, want := range map[string]string{
		"a.b":                         "a.b",
		"a.$1.c":                      "a.*.c",
		"a.$x":                        "a.$x",
		"a.{{wildcard(1)}}.>":         "a.*.>",
		"a.{{random(3)}}.b":           "a.*.b",
		"a.{{partition(3,1)}}":        "a.*",
		"a.{{split(1,-)}}.b":          "a.>",
		"a.{{SliceFromLeft(1,2)}}.b":  "a.>",
		"a.{{splitFromRight(1,2)}}.b": "a.>",
		"a.{{nosuch(1)}}.b":           "a.*.b",
		">":                           ">",
	} {
		if got := Shape(dest); got != want {
			t.Errorf("Shape(%q) = %q, want %q", dest, got, want)
		}
	}
}

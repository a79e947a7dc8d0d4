package transform

import (
	"strings"
	"testing"
)

// TestReviewResultAndWorkBounded: a destination within MaxWork that still
// multiplies a long subject past MaxResult yields no subject (and stops
// building it), and one past MaxWork is refused.
func TestReviewResultAndWorkBounded(t *testing.T) {
	tr, err := New("t.*", strings.TrimSuffix(strings.Repeat("$1.", 200), "."))
	if err != nil {
		t.Fatal(err)
	}
	subj := []byte("t." + strings.Repeat("x", 3000))
	out, ok := tr.Append(nil, subj)
	if ok || len(out) != 0 || cap(out) > 4*MaxResult {
		t.Fatalf("ok %v, %d bytes, cap %d", ok, len(out), cap(out))
	}
	if _, err := New("t.*", "p.{{partition(3,"+strings.Repeat("1,", MaxWork)+"1)}}"); err == nil {
		t.Fatal("a partition naming its wildcard more than MaxWork times was taken")
	}
	if _, err := New("t.*", strings.TrimSuffix(strings.Repeat("$1.", MaxWork+1), ".")); err == nil {
		t.Fatal("a destination of more than MaxWork tokens was taken")
	}
}

// Package transform rewrites subjects: account mappings, stream subject
// transforms, republish and source/mirror transforms all share it, with
// nats-server's destination syntax and mapping functions.
//
// A destination is a subject whose tokens are literals, "$n" (what the
// source's n-th "*" matched), a final ">" (what the source's ">" matched),
// or a mapping function written "{{name(args)}}":
//
//	wildcard(n)            the n-th "*"'s token
//	partition(p, n...)     fnv-1a of the named tokens (of the whole subject
//	                       when none are named) modulo p
//	splitFromLeft(n, k)    the token split in two after its k-th byte
//	splitFromRight(n, k)   ... before its k-th last byte
//	sliceFromLeft(n, k)    the token cut into k-byte pieces from the left
//	sliceFromRight(n, k)   ... from the right
//	split(n, d)            the token split at each d, empty pieces dropped
//	left(n, k), right(n, k) its first / last k bytes
//	random(p)              a random number below p
//
// A function whose input is too short to split or slice leaves the token
// as it is, as nats-server does.
package transform

// Concurrency: a Transform is immutable once New returns it; any number
// of goroutines may apply it at once. Append allocates nothing beyond
// growing dst.

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/evnats/evnats/router"
)

// Errors, worded as nats-server's so that API replies and config errors
// read the same. Every destination error wraps ErrInvalidDestination.
var (
	ErrBadSubject         = errors.New("invalid subject")
	ErrInvalidDestination = errors.New("invalid mapping destination")

	errInvalidTransform = fmt.Errorf("%w: invalid transform", ErrInvalidDestination)
	errUnknownFunction  = fmt.Errorf("%w: unknown function", ErrInvalidDestination)
	errIndexOutOfRange  = fmt.Errorf("%w: wildcard index out of range", ErrInvalidDestination)
	errNotEnoughArgs    = fmt.Errorf("%w: not enough arguments passed to the function", ErrInvalidDestination)
	errInvalidArg       = fmt.Errorf("%w: function argument is invalid or in the wrong format", ErrInvalidDestination)
	errTooManyArgs      = fmt.Errorf("%w: too many arguments passed to the function", ErrInvalidDestination)
)

// tokenError names the destination token an error is about.
type tokenError struct {
	err   error
	token string
}

func (e *tokenError) Error() string {
	if e.token == "" {
		return e.err.Error()
	}
	return e.err.Error() + " in " + e.token
}

func (e *tokenError) Unwrap() error { return e.err }

// fn is what one destination token does.
type fn uint8

const (
	literal fn = iota
	wildcard
	partition
	splitFromLeft
	splitFromRight
	sliceFromLeft
	sliceFromRight
	split
	left
	right
	random
)

// functions are the mapping functions by name. An upper-case letter in a
// name may be written in either case, every other letter only in lower
// case ("SplitFromLeft", "splitfromleft", not "SPLIT"), as nats-server
// reads them.
var functions = []struct {
	name string
	fn   fn
}{
	{"Wildcard", wildcard}, {"Partition", partition},
	{"SplitFromLeft", splitFromLeft}, {"SplitFromRight", splitFromRight},
	{"SliceFromLeft", sliceFromLeft}, {"SliceFromRight", sliceFromRight},
	{"Split", split}, {"Left", left}, {"Right", right}, {"Random", random},
}

// A Transform maps subjects its source matches to its destination.
type Transform struct {
	src, dest string
	srcToks   []string
	srcFwc    bool
	toks      []destTok
	destFwc   bool // the destination ends in ">": the rest follows toks
	identity  bool // ">" to ">": subjects are kept
}

// destTok is one destination token: a literal, or a function of the
// subject's tokens at positions idx (0-based) with an integer argument n
// or a delimiter sep.
type destTok struct {
	fn  fn
	lit string
	idx []int
	n   int
	sep string
}

// New compiles the transform from src (">" when empty) to dest, checking
// both as nats-server does. An empty dest is no transform: nil, nil.
func New(src, dest string) (*Transform, error) {
	if dest == "" {
		return nil, nil
	}
	if src == "" {
		src = ">"
	}
	if err := checkDestTokens(dest); err != nil {
		return nil, err
	}
	if !router.ValidSubject(src) {
		return nil, ErrBadSubject
	}
	t := &Transform{src: src, dest: dest, srcToks: strings.Split(src, ".")}
	// starAt[k] is the position in the subject of the source's (k+1)-th "*".
	var starAt []int
	for i, tok := range t.srcToks {
		switch tok {
		case "*":
			starAt = append(starAt, i)
		case ">":
			t.srcFwc = true
		}
	}
	dtoks := strings.Split(dest, ".")
	t.destFwc = dtoks[len(dtoks)-1] == ">"
	for _, tok := range dtoks {
		if tok == "*" {
			return nil, ErrBadSubject
		}
	}
	if t.srcFwc != t.destFwc {
		return nil, ErrBadSubject
	}
	if t.destFwc {
		dtoks = dtoks[:len(dtoks)-1]
	}
	t.identity = src == ">" && len(dtoks) == 0
	hasWildcards := len(starAt) > 0 || t.srcFwc
	work := 0
	for _, tok := range dtoks {
		d, idx, err := parseToken(tok)
		if err != nil {
			return nil, err
		}
		if work += max(1, len(idx)); work > MaxWork {
			return nil, &tokenError{errTooManyArgs, "destination: more than " + strconv.Itoa(MaxWork) + " tokens and arguments"}
		}
		switch {
		case d.fn == literal || d.fn == random:
		case !hasWildcards && d.fn == partition:
			idx = nil // nats-server hashes the whole subject here
		case !hasWildcards:
			return nil, &tokenError{errIndexOutOfRange, tok}
		}
		for _, n := range idx {
			if n < 1 || n > len(starAt) {
				return nil, &tokenError{errIndexOutOfRange, fmt.Sprintf("%s: [%d]", tok, n)}
			}
			d.idx = append(d.idx, starAt[n-1])
		}
		t.toks = append(t.toks, d)
	}
	return t, nil
}

// checkDestTokens is nats-server's first pass over a destination: no empty
// token, nothing after ">", only known functions, no blanks outside them.
func checkDestTokens(dest string) error {
	fwc := false
	for _, tok := range strings.Split(dest, ".") {
		if tok == "" || fwc {
			return &tokenError{errInvalidTransform, tok}
		}
		if isFunction(tok) {
			if _, _, ok := callOf(tok); !ok {
				return &tokenError{errUnknownFunction, tok}
			}
			continue
		}
		if tok == ">" {
			fwc = true
		} else if strings.ContainsAny(tok, "\t\n\f\r ") {
			return errInvalidTransform
		}
	}
	return nil
}

func isFunction(tok string) bool {
	return len(tok) > 4 && strings.HasPrefix(tok, "{{") && strings.HasSuffix(tok, "}}")
}

// callOf splits "{{ name ( args ) }}" into the function and its
// arguments, each trimmed of spaces.
func callOf(tok string) (fn, []string, bool) {
	s := strings.TrimLeft(tok[2:len(tok)-2], " \t\n\f\r\v")
	s = strings.TrimRight(s, " \t\n\f\r\v")
	open := strings.IndexByte(s, '(')
	if open < 0 || !strings.HasSuffix(s, ")") {
		return 0, nil, false
	}
	name := strings.TrimRight(s[:open], " \t\n\f\r\v")
	for _, f := range functions {
		if sameName(f.name, name) {
			args := strings.Split(s[open+1:len(s)-1], ",")
			for i := range args {
				args[i] = strings.TrimSpace(args[i])
			}
			return f.fn, args, true
		}
	}
	return 0, nil, false
}

// sameName compares a written function name with its canonical spelling.
func sameName(canonical, written string) bool {
	if len(canonical) != len(written) {
		return false
	}
	for i := 0; i < len(canonical); i++ {
		c, w := canonical[i], written[i]
		if w != c && !(c >= 'A' && c <= 'Z' && w == c+'a'-'A') {
			return false
		}
	}
	return true
}

// parseToken reads one destination token; idx are the 1-based wildcard
// numbers it names.
func parseToken(tok string) (destTok, []int, error) {
	if n, ok := strings.CutPrefix(tok, "$"); ok && len(tok) > 1 {
		if i, err := strconv.Atoi(n); err == nil {
			return destTok{fn: wildcard}, []int{i}, nil
		}
		return destTok{lit: tok}, nil, nil // "$name" is a literal
	}
	if !isFunction(tok) {
		return destTok{lit: tok}, nil, nil
	}
	f, args, _ := callOf(tok)
	bad := func(err error) (destTok, []int, error) { return destTok{}, nil, &tokenError{err, tok} }
	d := destTok{fn: f}
	switch f {
	case wildcard:
		if len(args) > 1 {
			return bad(errTooManyArgs)
		}
		if args[0] == "" {
			return bad(errNotEnoughArgs)
		}
		i, err := strconv.Atoi(args[0])
		if err != nil {
			return bad(errInvalidArg)
		}
		return d, []int{i}, nil
	case partition, random:
		if f == random && len(args) != 1 {
			return bad(errNotEnoughArgs)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > math.MaxInt32 {
			return bad(errInvalidArg)
		}
		d.n = n
		var idx []int
		for _, a := range args[1:] {
			i, err := strconv.Atoi(a)
			if err != nil {
				return bad(errInvalidArg)
			}
			idx = append(idx, i)
		}
		return d, idx, nil
	default: // (wildcard, int) and split's (wildcard, delimiter)
		if len(args) < 2 {
			return bad(errNotEnoughArgs)
		}
		if len(args) > 2 {
			return bad(errTooManyArgs)
		}
		i, err := strconv.Atoi(args[0])
		if err != nil {
			return bad(errInvalidArg)
		}
		if f == split {
			if strings.ContainsAny(args[1], " .") {
				return bad(errInvalidArg)
			}
			d.sep = args[1]
			return d, []int{i}, nil
		}
		n, err := strconv.ParseInt(args[1], 10, 32)
		if err != nil {
			return bad(errInvalidArg)
		}
		d.n = int(n)
		return d, []int{i}, nil
	}
}

// Source is the filter the transform applies to.
func (t *Transform) Source() string { return t.src }

// Destination is the destination as written.
func (t *Transform) Destination() string { return t.dest }

// Apply returns subject transformed, and whether the source matched it
// and the result is a valid literal subject.
func (t *Transform) Apply(subject string) (string, bool) {
	out, ok := t.Append(nil, []byte(subject))
	return string(out), ok
}

// maxStackTokens bounds the token table Append keeps on the stack.
const maxStackTokens = 32

// MaxWork bounds a destination's tokens, a partition counting the wildcards it
// names: each is a copy or a hash of up to the whole subject for every
// message, so a destination repeating "$1" or a partition naming one
// wildcard 100,000 times (both fit in one API request) cost a publish
// seconds of CPU. No real destination comes near it; nats-server has no
// such bound.
const MaxWork = 256

// MaxResult is the longest subject Append builds: a destination that
// repeats a token ("$1.$1.$1...") multiplies the subject's length by its
// token count, so an unchecked one turns a 4 KB subject into hundreds of
// MB. Nothing longer can be stored (JetStream records hold a 16-bit
// subject length) and no client can publish one.
const MaxResult = 1<<16 - 1

// Append appends the transformed subject to dst. It reports false, with
// dst unchanged, when the source does not match subject or the result
// would not be a valid literal subject (a split that leaves an empty
// token) or would be longer than MaxResult.
func (t *Transform) Append(dst, subject []byte) ([]byte, bool) {
	var stack [maxStackTokens]span
	spans := tokenize(subject, stack[:0])
	if !t.matches(subject, spans) {
		return dst, false
	}
	start := len(dst)
	if t.identity {
		if !router.ValidLiteralSubject(subject) {
			return dst, false
		}
		return append(dst, subject...), true
	}
	for i := range t.toks {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = t.toks[i].append(dst, subject, spans)
		if len(dst)-start > MaxResult { // one token adds at most twice the subject
			return dst[:start], false
		}
	}
	if t.destFwc {
		if len(t.toks) > 0 {
			dst = append(dst, '.')
		}
		dst = append(dst, subject[spans[len(t.srcToks)-1].start:]...)
	}
	if len(dst)-start > MaxResult || !router.ValidLiteralSubject(dst[start:]) {
		return dst[:start], false
	}
	return dst, true
}

// span is one token of a subject: subject[start:end].
type span struct{ start, end int }

func tokenize(subject []byte, spans []span) []span {
	start := 0
	for i := 0; i <= len(subject); i++ {
		if i == len(subject) || subject[i] == '.' {
			spans = append(spans, span{start, i})
			start = i + 1
		}
	}
	return spans
}

func (t *Transform) matches(subject []byte, spans []span) bool {
	if len(spans) < len(t.srcToks) || !t.srcFwc && len(spans) != len(t.srcToks) {
		return false
	}
	for i, tok := range t.srcToks {
		s := subject[spans[i].start:spans[i].end]
		if len(s) == 0 {
			return false
		}
		switch tok {
		case "*", ">":
		default:
			if tok != string(s) { // no allocation: the compiler compares in place
				return false
			}
		}
	}
	return true
}

const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

func (d *destTok) append(dst, subject []byte, spans []span) []byte {
	var tok []byte
	if len(d.idx) > 0 {
		tok = subject[spans[d.idx[0]].start:spans[d.idx[0]].end]
	}
	k := d.n
	switch d.fn {
	case literal:
		return append(dst, d.lit...)
	case wildcard:
		return append(dst, tok...)
	case partition:
		if k == 0 {
			return append(dst, '0')
		}
		h := uint32(fnvOffset)
		hash := func(b []byte) {
			for _, c := range b {
				h = (h ^ uint32(c)) * fnvPrime
			}
		}
		if len(d.idx) == 0 {
			hash(subject)
		}
		for _, i := range d.idx {
			hash(subject[spans[i].start:spans[i].end])
		}
		return strconv.AppendUint(dst, uint64(h%uint32(k)), 10)
	case random:
		if k == 0 {
			return append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(rand.IntN(k)), 10)
	case splitFromLeft, splitFromRight:
		if k <= 0 || k >= len(tok) {
			return append(dst, tok...)
		}
		at := k
		if d.fn == splitFromRight {
			at = len(tok) - k
		}
		dst = append(dst, tok[:at]...)
		dst = append(dst, '.')
		return append(dst, tok[at:]...)
	case sliceFromLeft, sliceFromRight:
		if k <= 0 || k >= len(tok) {
			return append(dst, tok...)
		}
		first := k // the left-most piece; from the right it holds the remainder
		if r := len(tok) % k; d.fn == sliceFromRight && r > 0 {
			first = r
		}
		dst = append(dst, tok[:first]...)
		for i := first; i < len(tok); i += k {
			dst = append(dst, '.')
			dst = append(dst, tok[i:min(i+k, len(tok))]...)
		}
		return dst
	case split:
		written := false
		for len(tok) > 0 {
			piece := tok
			if d.sep != "" {
				if j := indexOf(tok, d.sep); j >= 0 {
					piece, tok = tok[:j], tok[j+len(d.sep):]
				} else {
					tok = nil
				}
			} else {
				piece, tok = tok[:1], tok[1:]
			}
			if len(piece) == 0 {
				continue
			}
			if written {
				dst = append(dst, '.')
			}
			dst, written = append(dst, piece...), true
		}
		return dst
	case left:
		if k > 0 && k < len(tok) {
			tok = tok[:k]
		}
		return append(dst, tok...)
	case right:
		if k > 0 && k < len(tok) {
			tok = tok[len(tok)-k:]
		}
		return append(dst, tok...)
	}
	return dst
}

func indexOf(b []byte, sep string) int {
	for i := 0; i+len(sep) <= len(b); i++ {
		if string(b[i:i+len(sep)]) == sep {
			return i
		}
	}
	return -1
}

// Shape is dest as a filter that matches every subject dest can produce
// (whether or not it would compile): a token taken from the subject or
// made by a function is "*", and a function that can make several tokens
// (split, splitFrom*, sliceFrom*) ends the filter with ">". Cycle checks
// compare it with a stream's subjects.
func Shape(dest string) string {
	toks := strings.Split(dest, ".")
	for i, tok := range toks {
		d, _, err := parseToken(tok)
		switch {
		case err == nil && d.fn == literal:
		case err == nil && (d.fn == split || d.fn == splitFromLeft || d.fn == splitFromRight ||
			d.fn == sliceFromLeft || d.fn == sliceFromRight):
			toks[i] = ">"
			return strings.Join(toks[:i+1], ".")
		default:
			toks[i] = "*"
		}
	}
	return strings.Join(toks, ".")
}

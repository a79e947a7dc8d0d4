// Package router matches published subjects to subscriptions: a global
// sublist (a trie over subject tokens) and per-loop match caches invalidated
// by the sublist's generation counter.
package router

// Concurrency: pure functions; any goroutine.

// ValidSubject reports whether s is a valid subscription subject: non-empty
// tokens separated by '.', where '*' and '>' may appear only as whole tokens
// and '>' only last. Whitespace is never allowed.
func ValidSubject[S ~string | ~[]byte](s S) bool {
	if len(s) == 0 {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			c := s[i]
			if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				return false
			}
			if c != '.' {
				continue
			}
		}
		tok := s[start:i]
		if len(tok) == 0 {
			return false
		}
		// '*' or '>' inside a longer token is literal, as in nats-server.
		if len(tok) == 1 && tok[0] == '>' && i != len(s) {
			return false
		}
		start = i + 1
	}
	return true
}

// ValidLiteralSubject reports whether s is valid and has no wildcard tokens,
// as a publish subject must. It takes bytes too, so that checking a PUB's
// subject does not allocate.
func ValidLiteralSubject[S ~string | ~[]byte](s S) bool {
	if !ValidSubject(s) {
		return false
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if tok := s[start:i]; len(tok) == 1 && (tok[0] == '*' || tok[0] == '>') {
				return false
			}
			start = i + 1
		}
	}
	return true
}

// ValidQueue reports whether q is a valid queue group name.
func ValidQueue(q string) bool {
	if q == "" {
		return false
	}
	for i := 0; i < len(q); i++ {
		if c := q[i]; c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			return false
		}
	}
	return true
}

// SubjectMatches reports whether the literal subject matches pattern, which
// may hold wildcards. It is the naive reference the sublist is tested against
// and serves small permission lists; it takes the subject as bytes too, so
// that filtering a delivery does not allocate.
func SubjectMatches[S ~string | ~[]byte](pattern string, subject S) bool {
	for {
		pt, prest, pmore := nextToken(pattern)
		st, srest, smore := nextToken(subject)
		switch {
		case pt == ">":
			return len(st) != 0
		case len(st) == 0 && pt == "":
			return true
		case len(st) == 0 || pt == "":
			return false
		case pt != "*" && !sameToken(pt, st):
			return false
		}
		if pmore != smore {
			return false
		}
		if !pmore {
			return true
		}
		pattern, subject = prest, srest
	}
}

// nextToken splits the first token off a subject given as a string or bytes.
func nextToken[S ~string | ~[]byte](s S) (tok, rest S, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return s[:i], s[i+1:], true
		}
	}
	return s, s[len(s):], false
}

func sameToken[S ~string | ~[]byte](a string, b S) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// SubjectCovers reports whether every subject that sub (which may hold
// wildcards) matches is also matched by pattern: permissions use it so that
// a wildcard subscription needs an entry at least as wide.
func SubjectCovers(pattern, sub string) bool {
	for {
		pt, prest, pmore := nextToken(pattern)
		st, srest, smore := nextToken(sub)
		switch {
		case pt == ">":
			return true
		case st == ">":
			return false
		case pt == "*":
		case st == "*" || pt != st:
			return false
		}
		if pmore != smore {
			return false
		}
		if !pmore {
			return true
		}
		pattern, sub = prest, srest
	}
}

// SubjectsCollide reports whether some literal subject matches both
// patterns: streams may not share one.
func SubjectsCollide(a, b string) bool {
	for {
		at, arest, amore := nextToken(a)
		bt, brest, bmore := nextToken(b)
		switch {
		case at == ">" || bt == ">":
			return true // both still have a token here, and '>' takes the rest
		case at != bt && at != "*" && bt != "*":
			return false
		case amore != bmore:
			return false // one ran out of tokens first
		case !amore:
			return true
		}
		a, b = arest, brest
	}
}

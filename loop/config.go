package loop

// Concurrency: runs once per load (start, or a reload on SIGHUP), on the
// caller's goroutine, to fill Options; nothing here is shared.

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
)

// ApplyConfigFile reads a configuration file in nats-server's syntax and
// sets the keys evnats supports on o. Every problem in the file is
// reported at once, each with file:line:column (ConfigErrors): an unknown
// key (with the nearest known one, "did you mean"), a key nats-server has
// that evnats does not serve yet, or a value of the wrong kind.
func ApplyConfigFile(o *Options, path string) error {
	m, err := conf.ParseFileWithChecks(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	w := &cfgWalker{file: path}
	w.walk(w.topBlock(o), m)
	if len(w.errs) > 0 {
		return w.errs
	}
	return nil
}

// ConfigError is one problem in a configuration file.
type ConfigError struct {
	File      string
	Line, Col int
	Msg       string
}

func (e ConfigError) Error() string { return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg) }

// ConfigErrors are all the problems found in one file, in file order.
type ConfigErrors []ConfigError

func (es ConfigErrors) Error() string {
	var b strings.Builder
	if len(es) == 1 {
		b.WriteString("config: ")
	} else {
		fmt.Fprintf(&b, "config: %d problems:", len(es))
	}
	for i, e := range es {
		if len(es) > 1 || i > 0 {
			b.WriteString("\n  ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// cfgWalker walks parsed blocks and collects every problem.
type cfgWalker struct {
	file string
	errs ConfigErrors
}

// setter stores one key's value; v has no position wrappers left.
type setter func(v any) error

// block is one level of the file (top, mqtt, websocket, ...): the keys
// evnats takes, and those nats-server takes that evnats does not yet.
type block struct {
	path   string // "" at the top, else "mqtt", "authorization", ...
	keys   map[string]setter
	native []string
}

// positioned is what the pedantic parser wraps every value in.
type positioned interface {
	Value() any
	Line() int
	Position() int
	SourceFile() string
}

// walk sets every key of m (in file order) and records each problem.
// A setter for a nested block walks it with w itself, so its problems
// carry their own lines.
func (w *cfgWalker) walk(b block, m map[string]any) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, ci := w.where(m[keys[i]])
		lj, cj := w.where(m[keys[j]])
		return li < lj || li == lj && ci < cj || li == lj && ci == cj && keys[i] < keys[j]
	})
	for _, k := range keys {
		v := m[k]
		name := k
		if b.path != "" {
			name = b.path + "." + k
		}
		set, ok := b.keys[strings.ToLower(k)]
		switch {
		case ok:
			if err := set(w.unwrapTop(v)); err != nil {
				w.add(v, fmt.Sprintf("%q: %v", name, err))
			}
		case contains(b.native, strings.ToLower(k)):
			w.add(v, fmt.Sprintf("%q: nats-server feature not supported by evnats yet", name))
		default:
			msg := fmt.Sprintf("unknown key %q", name)
			if near := nearest(strings.ToLower(k), b); near != "" {
				msg += fmt.Sprintf(", did you mean %q?", near)
			}
			w.add(v, msg)
		}
	}
}

// add records a problem at the position of v.
func (w *cfgWalker) add(v any, msg string) {
	e := ConfigError{File: w.file, Msg: msg}
	if p, ok := v.(positioned); ok {
		e.Line, e.Col = p.Line(), p.Position()
		if e.Line == 1 {
			// The lexer counts columns from the newline before a line, so
			// from 1, except on the first line, which has none.
			e.Col++
		}
		if f := p.SourceFile(); f != "" {
			e.File = f
		}
	}
	w.errs = append(w.errs, e)
}

func (w *cfgWalker) where(v any) (int, int) {
	if p, ok := v.(positioned); ok {
		return p.Line(), p.Position()
	}
	return 0, 0
}

// unwrapTop removes the position wrapper of v itself; what v holds
// keeps theirs, so that a nested block's problems carry their own lines.
func (w *cfgWalker) unwrapTop(v any) any { return bare(v) }

// bare is v without its position wrapper.
func bare(v any) any {
	if p, ok := v.(positioned); ok {
		return p.Value()
	}
	return v
}

// plain removes every position wrapper inside v.
func plain(v any) any {
	switch t := bare(v).(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = plain(e)
		}
		return out
	default:
		return t
	}
}

// kind names the kind of a value for an error.
func kind(v any) string {
	switch bare(v).(type) {
	case string:
		return "a string"
	case int64:
		return "a number"
	case float64:
		return "a decimal number"
	case bool:
		return "true or false"
	case map[string]any:
		return "a block"
	case []any:
		return "a list"
	case time.Time:
		return "a date"
	}
	return fmt.Sprintf("%T", bare(v))
}

// sub walks a nested block (the value of a key) with w.
func (w *cfgWalker) sub(b block) setter {
	return func(v any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a block, got %s", kind(v))
		}
		w.walk(b, m)
		return nil
	}
}

// nearest is the key of b closest to k, if close enough to be a typo:
// at most one edit in four characters, and at least one.
func nearest(k string, b block) string {
	best, bestD := "", 0
	consider := func(c string) {
		d := editDistance(k, c)
		limit := max(1, len(c)/4)
		if d <= limit && (best == "" || d < bestD || d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	for c := range b.keys {
		consider(c)
	}
	for _, c := range b.native {
		consider(c)
	}
	return best
}

// editDistance counts the insertions, deletions, substitutions and swaps
// of two neighbours that turn a into b (optimal string alignment), so
// "prot" is one edit from "port".
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

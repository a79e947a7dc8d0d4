package main

// TestREADMEExamples runs every shell example of the README against a live
// evnats, so the README cannot drift from what the server and the tools do.
//
// How a ```sh block is read:
//   - Lines run one by one with bash in a fresh directory, in order. A line
//     ending in `&` runs in the background until the block ends; any other
//     line must exit 0 within 30 s.
//   - `make run &` starts the server as the Makefile's run target does; a
//     line starting `evnats ` starts the built binary with its arguments,
//     except `evnats --signal ...`, which runs like any other line.
//     The harness adds the monitoring port (-m) to either and waits for
//     /healthz. A background client line must add a subscription (it waits
//     for /varz to show one more), so what follows cannot outrun it.
//   - A trailing `# -> TEXT` says the line's output contains TEXT (for a
//     background line: by the end of the block).
//   - The default ports (4222, 1883, 8222, 8080, 8443, 8883) are replaced by
//     free ones everywhere, and NATS_URL points the nats CLI at the server.
//   - An HTML comment right above the fence may say `<!-- example: not run:
//     WHY -->` (first, the rest of the comment is the reason), or `<!-- example: certificates -->` (ca.pem, server.pem,
//     server-key.pem, client.pem, client-key.pem in the directory), or
//     `<!-- example: config: TEXT -->` (the server runs with TEXT as its
//     config file, evnats.conf), or both, separated by `;`.
//
// Tools: the nats CLI (bin/nats, as .ci/run installs it), mosquitto_pub and
// mosquitto_sub, curl and jq. Without them the test skips, or fails under
// EVNATS_REQUIRE_TOOLS=1.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evnats/evnats/loop/looptest"
	"github.com/evnats/evnats/loop/tlstest"
)

// readmeBlock is one ```sh block of the README.
type readmeBlock struct {
	line      int // of the fence
	lines     []string
	notRun    string
	certs     bool
	config    string
	directive string
}

var defaultPorts = []string{"4222", "1883", "8222", "8080", "8443", "8883"}

func TestREADMEExamples(t *testing.T) {
	root, _ := filepath.Abs("../..")
	for _, tool := range []string{"mosquitto_pub", "mosquitto_sub", "curl", "jq"} {
		looptest.Tool(t, tool, "the README's examples use it (apt-get install mosquitto-clients curl jq)")
	}
	natsCLI := looptest.Tool(t, "nats", "GOBIN=$PWD/bin go install github.com/nats-io/natscli/nats@v0.5.0",
		filepath.Join(root, "bin", "nats"))

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "evnats"), ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runArgs := makeRunArgs(t, filepath.Join(root, "Makefile"))
	blocks := readmeBlocks(t, filepath.Join(root, "README.md"))
	if len(blocks) < 5 {
		t.Fatalf("found %d sh blocks in the README", len(blocks))
	}
	for _, b := range blocks {
		t.Run(fmt.Sprintf("line%d", b.line), func(t *testing.T) {
			if b.notRun != "" {
				t.Skipf("not run: %s", b.notRun)
			}
			runBlock(t, b, bin, filepath.Dir(natsCLI), runArgs)
		})
	}
}

// makeRunArgs returns the arguments the Makefile's run target gives the
// server.
func makeRunArgs(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^run:.*\n(?:\t.*\n)*?\t\./\$\(BIN\) (.*)$`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no ./$(BIN) line in the Makefile's run target")
	}
	return string(m[1])
}

func readmeBlocks(t *testing.T, path string) []readmeBlock {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var blocks []readmeBlock
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```sh" {
			continue
		}
		b := readmeBlock{line: i + 1}
		for j := i - 1; j >= 0 && j >= i-2; j-- { // the directive, if any
			if d, ok := strings.CutPrefix(strings.TrimSpace(lines[j]), "<!-- example:"); ok {
				b.directive = strings.TrimSuffix(strings.TrimSpace(d), "-->")
				break
			}
		}
		parts := strings.Split(b.directive, ";")
		if strings.HasPrefix(b.directive, "not run:") {
			parts = []string{b.directive} // the reason may hold anything
		}
		for _, part := range parts {
			part = strings.TrimSpace(part)
			switch {
			case part == "":
			case strings.HasPrefix(part, "not run:"):
				b.notRun = strings.TrimSpace(strings.TrimPrefix(part, "not run:"))
			case part == "certificates":
				b.certs = true
			case strings.HasPrefix(part, "config:"):
				b.config = strings.TrimSpace(strings.TrimPrefix(part, "config:"))
			default:
				t.Fatalf("README line %d: unknown example directive %q", i, part)
			}
		}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.lines = append(b.lines, lines[i])
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// splitComment cuts a shell line at its comment (a # after white space,
// outside quotes).
func splitComment(line string) (cmd, comment string) {
	var quote byte
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:])
		}
	}
	return strings.TrimSpace(line), ""
}

// bgProc is a background line, with its output.
type bgProc struct {
	line   string
	want   string
	cmd    *exec.Cmd
	exited chan struct{} // closed when it has ended
	mu     sync.Mutex
	output bytes.Buffer
}

func (p *bgProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.Write(b)
}

func (p *bgProc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

func runBlock(t *testing.T, b readmeBlock, bin, toolDir, runArgs string) {
	dir := t.TempDir()
	ports := map[string]string{}
	for _, p := range defaultPorts {
		ports[p] = freePort(t)
	}
	portRE := regexp.MustCompile(`\b(` + strings.Join(defaultPorts, "|") + `)\b`)
	rewrite := func(s string) string {
		return portRE.ReplaceAllStringFunc(s, func(p string) string { return ports[p] })
	}
	mon := ports["8222"]
	if b.certs {
		if _, err := tlstest.Write(dir); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+toolDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"NATS_URL=nats://127.0.0.1:"+ports["4222"],
		"HOME="+dir, // natscli keeps its contexts there
	)
	var bg []*bgProc
	defer func() {
		for i := len(bg) - 1; i >= 0; i-- {
			p := bg[i]
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	}()
	start := func(line, want string) *bgProc {
		p := &bgProc{line: line, want: want, exited: make(chan struct{})}
		p.cmd = exec.Command("bash", "-c", "exec "+line)
		p.cmd.Dir, p.cmd.Env = dir, env
		p.cmd.Stdout, p.cmd.Stderr = p, p
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		bg = append(bg, p)
		go func() { _ = p.cmd.Wait(); close(p.exited) }()
		return p
	}

	serverUp := false
	if b.config != "" {
		if err := os.WriteFile(filepath.Join(dir, "evnats.conf"), []byte(rewrite(b.config)), 0o644); err != nil {
			t.Fatal(err)
		}
		p := start(rewrite(fmt.Sprintf("evnats -c evnats.conf -p 4222 -m %s", mon)), "")
		waitHealthy(t, p, mon)
		serverUp = true
	}
	for _, raw := range b.lines {
		cmd, comment := splitComment(raw)
		if cmd == "" {
			continue
		}
		want := ""
		if w, ok := strings.CutPrefix(comment, "->"); ok {
			want = strings.TrimSpace(w)
		}
		background := strings.HasSuffix(cmd, "&") && !strings.HasSuffix(cmd, "&&")
		cmd = strings.TrimSpace(strings.TrimSuffix(cmd, "&"))
		switch {
		case cmd == "make run":
			cmd = "evnats " + runArgs
			fallthrough
		case strings.HasPrefix(cmd, "evnats ") && !strings.HasPrefix(cmd, "evnats --signal "):
			if !background {
				t.Fatalf("README line %q: a server line must end in &", raw)
			}
			if !regexp.MustCompile(`(^| )(-p|--port|-c|--config) `).MatchString(cmd) {
				cmd += " -p 4222"
			}
			p := start(rewrite(cmd+" -m "+mon), want)
			waitHealthy(t, p, mon)
			serverUp = true
			continue
		}
		if !serverUp {
			t.Fatalf("README block at line %d runs %q before any server: start one in the block or say how in an example directive", b.line, cmd)
		}
		if background {
			// Ready once a connection newer than every one open now holds a
			// subscription (a count of all subscriptions could miss it while
			// an earlier command's connection is still going away).
			before := maxCID(t, mon)
			p := start(rewrite(cmd), want)
			waitFor(t, p, p.line, func() bool { return newSubscriber(t, mon, before) })
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		c := exec.CommandContext(ctx, "bash", "-c", rewrite(cmd))
		c.Dir, c.Env = dir, env
		out, err := c.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("README line %q: %v\n%s", raw, err, out)
		}
		if want != "" && !strings.Contains(string(out), want) {
			t.Fatalf("README line %q: output lacks %q:\n%s", raw, want, out)
		}
		t.Logf("$ %s\n%s", cmd, out)
	}
	for _, p := range bg {
		if p.want != "" {
			waitFor(t, p, p.line+" (output "+strconv.Quote(p.want)+")", func() bool { return strings.Contains(p.out(), p.want) })
		}
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// waitFor polls cond (a state another process reaches, with no event to
// wait on) for up to 15 s.
func waitFor(t *testing.T, p *bgProc, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		select {
		case <-p.exited:
			if !cond() {
				t.Fatalf("%s: exited; output:\n%s", what, p.out())
			}
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not ready after 15 s; output:\n%s", what, p.out())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitHealthy(t *testing.T, p *bgProc, mon string) {
	t.Helper()
	waitFor(t, p, p.line, func() bool {
		r, err := http.Get("http://127.0.0.1:" + mon + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
}

// conns lists the open connections' ids and subscription counts (/connz).
func conns(t *testing.T, mon string) map[uint64]int {
	r, err := http.Get("http://127.0.0.1:" + mon + "/connz?limit=100000")
	if err != nil {
		t.Fatalf("connz: %v", err)
	}
	defer r.Body.Close()
	var v struct {
		Conns []struct {
			CID  uint64 `json:"cid"`
			Subs int    `json:"subscriptions"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
		t.Fatalf("connz: %v", err)
	}
	out := map[uint64]int{}
	for _, c := range v.Conns {
		out[c.CID] = c.Subs
	}
	return out
}

func maxCID(t *testing.T, mon string) uint64 {
	var m uint64
	for cid := range conns(t, mon) {
		m = max(m, cid)
	}
	return m
}

// newSubscriber reports whether a connection with an id above after
// holds a subscription.
func newSubscriber(t *testing.T, mon string, after uint64) bool {
	for cid, n := range conns(t, mon) {
		if cid > after && n > 0 {
			return true
		}
	}
	return false
}

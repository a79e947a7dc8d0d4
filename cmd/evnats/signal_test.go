package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// evnatsBinary builds this command once per test run.
func evnatsBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "evnats-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "evnats")
		buildOut, buildErr = exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// evnatsCmd runs the binary to completion (a --signal call) and returns
// its combined output.
func evnatsCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, evnatsBinary(t), args...).CombinedOutput()
	return string(out), err
}

// waitFile waits until the file at path contains want and returns it.
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if want == "" && len(b) > 0 || want != "" && bytes.Contains(b, []byte(want)) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %q after 10s:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond) // the file is all there is to watch
	}
}

// running is an evnats process started by a test.
type running struct {
	dir, conf, pid, log string
	exited              chan error
	stderr              *bytes.Buffer
}

// startBinary runs the binary from a configuration file with a pid file
// and a log file, on a random port, and waits until it is ready.
func startBinary(t *testing.T, conf string) *running {
	t.Helper()
	dir := t.TempDir()
	r := &running{dir: dir, conf: filepath.Join(dir, "evnats.conf"), pid: filepath.Join(dir, "evnats.pid"),
		log: filepath.Join(dir, "evnats.log"), exited: make(chan error, 1), stderr: &bytes.Buffer{}}
	os.WriteFile(r.conf, []byte(conf), 0o644)
	srv := exec.Command(evnatsBinary(t), "-c", r.conf, "-a", "127.0.0.1", "-p", "-1", "-P", r.pid, "-l", r.log, "--sd", dir)
	srv.Stderr = r.stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- srv.Wait() }()
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		r.exited <- <-r.exited
	})
	waitFile(t, r.pid, "")
	waitFile(t, r.log, "Server is ready")
	return r
}

// wait waits for the process to end and returns how it ended.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.exited:
		r.exited <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("server still running after 10s")
		return nil
	}
}

// TestSignals drives the real binary with --signal as an operator would:
// reload applies a changed limit to a connected client, which stays, and
// a reload of a broken file changes nothing and logs where it is broken;
// reopen starts a new log file after the old one was moved away; quit
// stops the server, which removes its pid file.
func TestSignals(t *testing.T) {
	r := startBinary(t, "max_subscriptions: 3\n")
	conf, pid, logf := r.conf, r.pid, r.log
	log := waitFile(t, logf, "Server is ready")
	url := regexp.MustCompile(`Listening for client connections on (nats://\S+)`).FindStringSubmatch(log)
	if url == nil {
		t.Fatalf("no client URL in the log:\n%s", log)
	}
	if !strings.Contains(log, "Using configuration file: "+conf) || !strings.Contains(log, "PID file: "+pid) {
		t.Fatalf("start-up lines:\n%s", log)
	}

	errs := make(chan error, 8)
	nc, err := nats.Connect(url[1], nats.NoReconnect(), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.SubscribeSync("a"); err != nil {
		t.Fatal(err)
	}

	// reload: max_subscriptions 3 -> 1; the client keeps its connection.
	os.WriteFile(conf, []byte("max_subscriptions: 1\n"), 0o644)
	if out, err := evnatsCmd(t, "--signal", "reload="+pid); err != nil {
		t.Fatalf("--signal reload: %v\n%s", err, out)
	}
	waitFile(t, logf, "Reloaded server configuration: max_subscriptions")
	if _, err := nc.SubscribeSync("b"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "maximum subscriptions exceeded") {
			t.Fatalf("async error %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second subscription was taken after max_subscriptions became 1")
	}
	if err := nc.Flush(); err != nil || nc.Stats().Reconnects != 0 {
		t.Fatalf("client after the reload: %v, %d reconnects", err, nc.Stats().Reconnects)
	}

	// A reload with an error keeps the server and says where the error is.
	os.WriteFile(conf, []byte("max_subscriptions: 1\nmax_sub: 2\n"), 0o644)
	if out, err := evnatsCmd(t, "-P", pid, "--signal", "reload"); err != nil {
		t.Fatalf("--signal reload with -P: %v\n%s", err, out)
	}
	waitFile(t, logf, `[ERR] Failed to reload server configuration: config: `+conf+`:2:1: unknown key "max_sub", did you mean "max_subs"?`)

	// reopen: the log was moved away; a new file starts under its name.
	if err := os.Rename(logf, logf+".1"); err != nil {
		t.Fatal(err)
	}
	if out, err := evnatsCmd(t, "--signal", "reopen="+pid); err != nil {
		t.Fatalf("--signal reopen: %v\n%s", err, out)
	}
	waitFile(t, logf, "File log re-opened")

	// quit: a graceful stop; the pid file goes with the process.
	if out, err := evnatsCmd(t, "--signal", "quit="+pid); err != nil {
		t.Fatalf("--signal quit: %v\n%s", err, out)
	}
	if err := r.wait(t); err != nil {
		t.Fatalf("server exited with %v\n%s", err, r.stderr.String())
	}
	if _, err := os.Stat(pid); !os.IsNotExist(err) {
		t.Fatalf("pid file after exit: %v", err)
	}
	if !strings.Contains(waitFile(t, logf, "server shut down"), `Trapped "interrupt" signal`) {
		t.Fatal("no trapped signal line")
	}
}

// TestSignalStops: term stops cleanly (exit 0, pid file removed), ldm
// goes through lame duck mode first, stop kills.
func TestSignalStops(t *testing.T) {
	for _, c := range []struct {
		cmd, conf, log string
		clean          bool
	}{
		{"term", "", `Trapped "terminated" signal`, true},
		{"ldm", "lame_duck_duration: \"500ms\"\nlame_duck_grace_period: \"100ms\"\n", "entering lame duck mode", true},
		{"stop", "", "", false},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			r := startBinary(t, c.conf)
			if out, err := evnatsCmd(t, "--signal", c.cmd+"="+r.pid); err != nil {
				t.Fatalf("--signal %s: %v\n%s", c.cmd, err, out)
			}
			err := r.wait(t)
			if !c.clean {
				if err == nil || !strings.Contains(err.Error(), "killed") {
					t.Fatalf("after stop: %v, want killed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("exit %v\n%s", err, r.stderr.String())
			}
			if _, err := os.Stat(r.pid); !os.IsNotExist(err) {
				t.Fatalf("pid file after exit: %v", err)
			}
			waitFile(t, r.log, c.log)
			waitFile(t, r.log, "server shut down")
		})
	}
}

// TestSignalErrors: --signal's refusals.
func TestSignalErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pid")
	os.WriteFile(bad, []byte("not a pid\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--signal", "bounce=1"}, `unknown signal "bounce" (want stop, quit, term, reopen, reload or ldm)`},
		{[]string{"--signal", "reload=" + bad}, `invalid pid: "not a pid"`},
		{[]string{"--signal", "reload=0"}, `invalid pid: "0"`},
		{[]string{"-P", filepath.Join(dir, "none.pid"), "--signal", "reload"}, "pid file: open " + filepath.Join(dir, "none.pid")},
	} {
		out, err := evnatsCmd(t, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v\n%s\nwant %q", c.args, err, out, c.want)
		}
	}
}

// TestConfigErrorExit: a bad file stops the start with every problem.
func TestConfigErrorExit(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "evnats.conf")
	os.WriteFile(conf, []byte("prot: 4222\ncluster { port: 6222 }\n"), 0o644)
	out, err := evnatsCmd(t, "-c", conf)
	want := "evnats: config: 2 problems:\n  " + conf + `:1:1: unknown key "prot", did you mean "port"?` +
		"\n  " + conf + `:2:1: "cluster": nats-server feature not supported by evnats yet` + "\n"
	if err == nil || out != want {
		t.Fatalf("%v\n%q\nwant\n%q", err, out, want)
	}
}

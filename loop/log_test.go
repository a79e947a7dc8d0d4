package loop_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLogLineFormat: lines are nats-server's "[pid] date time [LVL] text";
// NoLogTime (-T=false) drops the timestamp.
func TestLogLineFormat(t *testing.T) {
	var withTime, noTime looptest.LogBuffer
	looptest.Start(t, loop.Options{LogWriter: &withTime})
	looptest.Start(t, loop.Options{LogWriter: &noTime, NoLogTime: true})
	stamped := regexp.MustCompile(`(?m)^\[\d+\] \d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{6} \[INF\] Server is ready$`)
	if !stamped.MatchString(withTime.String()) {
		t.Fatalf("log with timestamps:\n%s", withTime.String())
	}
	bare := regexp.MustCompile(`(?m)^\[\d+\] \[INF\] Server is ready$`)
	if !bare.MatchString(noTime.String()) {
		t.Fatalf("log without timestamps:\n%s", noTime.String())
	}
}

// TestLogStartupSaysWhere: the start-up lines name every listener, the
// transport and the JetStream store.
func TestLogStartupSaysWhere(t *testing.T) {
	var log looptest.LogBuffer
	dir := t.TempDir()
	s := looptest.Start(t, loop.Options{LogWriter: &log, HTTPPort: -1, MQTTPort: -1, JetStream: true, StoreDir: dir,
		Websocket: loop.WebsocketOptions{Port: -1, NoTLS: true}, IO: loop.IOGnet, Loops: 2})
	for _, want := range []string{
		"Listening for client connections on nats://" + s.Addr().String(),
		"Listening for MQTT clients on mqtt://" + s.MQTTAddr().String(),
		"Listening for websocket clients on ws://" + s.WebsocketAddr().String(),
		"Starting http monitor on " + s.MonitorAddr().String(),
		"JetStream store directory: " + dir,
		"Transport: gnet event loops, 2 loops",
		"Server is ready",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("no %q in\n%s", want, log.String())
		}
	}
}

// TestLogRotation: past log_size_limit the file is renamed to a
// timestamped backup and a new one started that says so; only
// logfile_max_num files are kept, the live one included.
func TestLogRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "evnats.log")
	other := filepath.Join(dir, "evnats.log.keep") // shares the prefix; not a backup
	os.WriteFile(other, []byte("x"), 0o644)
	s := looptest.Start(t, loop.Options{LogFile: path, LogSizeLimit: 2000, LogMaxFiles: 3})
	line := strings.Repeat("x", 100)
	for i := range 200 {
		s.Noticef("line %d %s", i, line)
	}
	backups, _ := filepath.Glob(path + ".*")
	var stamped []string
	stamp := regexp.MustCompile(`\.\d{4}\.\d\d\.\d\d\.\d\d\.\d\d\.\d\d\.\d{9}$`)
	for _, b := range backups {
		if stamp.MatchString(b) {
			stamped = append(stamped, b)
			if st, _ := os.Stat(b); st.Size() > 2000+200 {
				t.Errorf("backup %s has %d bytes, limit 2000", b, st.Size())
			}
		}
	}
	if len(stamped) != 2 {
		t.Fatalf("backups %q, want 2 (logfile_max_num 3 with the live file)", backups)
	}
	live := readFile(t, path)
	if !strings.Contains(live, "[INF] Rotated log, backup saved as \""+path+".") || !strings.Contains(live, "line 199 ") {
		t.Fatalf("live log:\n%s", live)
	}
	if readFile(t, stamped[1])[:1] != "[" || !strings.Contains(readFile(t, stamped[1]), "line ") {
		t.Fatalf("newest backup:\n%s", readFile(t, stamped[1]))
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("a file that only shares the prefix was removed: %v", err)
	}
}

// TestLogReopen: after an outside tool moved the log away, ReopenLogFile
// (SIGUSR1) starts a new file under the configured name.
func TestLogReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "evnats.log")
	s := looptest.Start(t, loop.Options{LogFile: path})
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	s.Noticef("before reopen")
	s.ReopenLogFile()
	s.Noticef("after reopen")
	if old := readFile(t, path+".1"); !strings.Contains(old, "before reopen") || strings.Contains(old, "after reopen") {
		t.Fatalf("moved log:\n%s", old)
	}
	if cur := readFile(t, path); !strings.Contains(cur, "[INF] File log re-opened") || !strings.Contains(cur, "after reopen") {
		t.Fatalf("new log:\n%s", cur)
	}
}

// TestLogReload: a reload moves the log to a file and turns debug on.
func TestLogReload(t *testing.T) {
	var buf looptest.LogBuffer
	r := startFromFile(t, loop.Options{LogWriter: &buf}, "max_payload: 1MB\n")
	r.s.Debugf("hidden")
	path := filepath.Join(t.TempDir(), "evnats.log")
	if err := r.rewrite(t, "max_payload: 1MB\ndebug: true\nlog_file: \""+path+"\"\n"); err != nil {
		t.Fatal(err)
	}
	r.s.Debugf("shown")
	if strings.Contains(buf.String(), "hidden") {
		t.Fatalf("debug line logged before debug was on:\n%s", buf.String())
	}
	cur := readFile(t, path)
	if !strings.Contains(cur, "[DBG] shown") || !strings.Contains(cur, "Reloaded server configuration: debug, log_file") {
		t.Fatalf("log file after the reload:\n%s", cur)
	}
}

// TestLogRemoteSyslog: remote_syslog sends each line to a syslog server
// over UDP, at its level.
func TestLogRemoteSyslog(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	s := looptest.Start(t, loop.Options{RemoteSyslog: "udp://" + pc.LocalAddr().String()})
	s.Errorf("disk on fire")
	buf := make([]byte, 2048)
	deadline := time.Now().Add(5 * time.Second)
	for {
		pc.SetReadDeadline(deadline)
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no syslog datagram with the error line: %v", err)
		}
		// <27> is facility daemon (3*8) + severity err (3).
		if msg := string(buf[:n]); strings.Contains(msg, "disk on fire") {
			if !strings.HasPrefix(msg, "<27>") || !strings.Contains(msg, "evnats[") {
				t.Fatalf("syslog datagram %q", msg)
			}
			return
		}
	}
}

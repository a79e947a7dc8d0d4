package loop_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
)

// writeConf writes a configuration file into a temporary directory.
func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "evnats.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigErrorsAllAtOnce: every problem of a file is reported in one
// error, in file order, each with file:line:column; a typo names the
// nearest key, a nats-server feature evnats lacks says so, a wrong kind
// of value says what was wanted, at every depth (jetstream, users,
// permissions, mqtt).
func TestConfigErrorsAllAtOnce(t *testing.T) {
	path := writeConf(t, `# evnats
prot: 4222
gateway {
  name: x
}
max_payload: "big"
jetstream {
  max_mem: 1GB
  domian: hub
}
authorization {
  users = [
    {user: a, password: b, permissions: {publish: "x.>", subscibe: "y"}}
    {user: c, pasword: d}
  ]
}
mqtt { port: 1883, ack_wait: "1m" }
`)
	err := loop.ApplyConfigFile(&loop.Options{}, path)
	var errs loop.ConfigErrors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T), want ConfigErrors", err, err)
	}
	want := []string{
		path + `:2:1: unknown key "prot", did you mean "port"?`,
		path + `:3:1: "gateway": nats-server feature not supported by evnats yet`,
		path + `:6:1: "max_payload": want a number, got a string`,
		path + `:9:3: unknown key "jetstream.domian", did you mean "domain"?`,
		path + `:13:58: unknown key "authorization.users[0].permissions.subscibe", did you mean "subscribe"?`,
		path + `:14:15: unknown key "authorization.users[1].pasword", did you mean "password"?`,
		path + `:17:20: "mqtt.ack_wait": nats-server feature not supported by evnats yet`,
	}
	if len(errs) != len(want) {
		t.Fatalf("%d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if errs[i].Error() != w {
			t.Errorf("error %d:\n got %s\nwant %s", i, errs[i].Error(), w)
		}
	}
	if got := err.Error(); got[:len("config: 7 problems:\n  ")] != "config: 7 problems:\n  " {
		t.Errorf("summary %q", got)
	}
}

// TestConfigErrorOne: a single problem reads as one line.
func TestConfigErrorOne(t *testing.T) {
	path := writeConf(t, "port: 4222\ngateway { port: 7422 }\n")
	err := loop.ApplyConfigFile(&loop.Options{}, path)
	want := "config: " + path + `:2:1: "gateway": nats-server feature not supported by evnats yet`
	if err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
	// A word far from every key gets no suggestion.
	path = writeConf(t, "zzzzzz: 1\n")
	err = loop.ApplyConfigFile(&loop.Options{}, path)
	if want := "config: " + path + `:1:1: unknown key "zzzzzz"`; err == nil || err.Error() != want {
		t.Fatalf("error %v, want %s", err, want)
	}
}

// TestConfigLogging: the logging and pid keys, with nats-server's aliases
// and size suffixes.
func TestConfigLogging(t *testing.T) {
	path := writeConf(t, `
log_file: "/var/log/evnats.log"
log_size_limit: 10MB
logfile_max_num: 5
logtime: false
logtime_utc: true
syslog: true
remote_syslog: "udp://127.0.0.1:514"
pid_file: "/run/evnats.pid"
debug: true
trace: true
ping_interval: "30s"
`)
	var o loop.Options
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.LogFile != "/var/log/evnats.log" || o.LogSizeLimit != 10<<20 || o.LogMaxFiles != 5 || !o.NoLogTime ||
		!o.LogTimeUTC || !o.Syslog || o.RemoteSyslog != "udp://127.0.0.1:514" || o.PidFile != "/run/evnats.pid" ||
		!o.Debug || !o.Trace || o.PingInterval != 30*time.Second {
		t.Fatalf("options %+v", o)
	}
	path = writeConf(t, "logfile: a.log\nlogfile_size_limit: 1KB\nlog_max_num: 2\npidfile: p\n")
	o = loop.Options{}
	if err := loop.ApplyConfigFile(&o, path); err != nil {
		t.Fatal(err)
	}
	if o.LogFile != "a.log" || o.LogSizeLimit != 1024 || o.LogMaxFiles != 2 || o.PidFile != "p" {
		t.Fatalf("aliases: %+v", o)
	}
}

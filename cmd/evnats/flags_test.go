package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLogFlags: nats-server's logging flags, the combined -DV, -VV and
// -DVV, and flags over the configuration file.
func TestLogFlags(t *testing.T) {
	for _, c := range []struct {
		args         []string
		debug, trace bool
	}{
		{[]string{"-D"}, true, false},
		{[]string{"-V"}, false, true},
		{[]string{"-DV"}, true, true},
		{[]string{"-VV"}, false, true},
		{[]string{"-DVV"}, true, true},
		{[]string{"--debug", "--trace"}, true, true},
	} {
		cl, err := parseCmdline(c.args)
		if err != nil {
			t.Fatal(err)
		}
		o, err := cl.load()
		if err != nil {
			t.Fatal(err)
		}
		if o.Debug != c.debug || o.Trace != c.trace {
			t.Errorf("%v: debug %v trace %v, want %v %v", c.args, o.Debug, o.Trace, c.debug, c.trace)
		}
	}

	conf := filepath.Join(t.TempDir(), "evnats.conf")
	os.WriteFile(conf, []byte("log_file: from-file.log\nlogtime: false\npid_file: file.pid\nlog_size_limit: 1KB\n"), 0o644)
	cl, err := parseCmdline([]string{"-c", conf, "-l", "flag.log", "-T", "-s", "-r", "udp://127.0.0.1:514"})
	if err != nil {
		t.Fatal(err)
	}
	o, err := cl.load()
	if err != nil {
		t.Fatal(err)
	}
	if o.LogFile != "flag.log" || o.NoLogTime || !o.Syslog || o.RemoteSyslog != "udp://127.0.0.1:514" ||
		o.PidFile != "file.pid" || o.LogSizeLimit != 1024 || o.ConfigFile != conf {
		t.Fatalf("options %+v", o)
	}
	if cl.pidFile() != "file.pid" {
		t.Fatalf("--signal's pid file %q, want the configuration's", cl.pidFile())
	}
	cl, _ = parseCmdline([]string{"-c", conf, "-P", "flag.pid", "-T=false"})
	if o, _ = cl.load(); o.PidFile != "flag.pid" || !o.NoLogTime || cl.pidFile() != "flag.pid" {
		t.Fatalf("-P and -T=false over the file: %+v", o)
	}
}

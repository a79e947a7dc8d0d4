package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
)

// The MQTT brokers MQTT users compare against, beside nats-server: mosquitto
// (C, one thread on epoll; Debian's `mosquitto` package) and mochi-mqtt (Go,
// a goroutine per connection; built from the module pinned in go.mod). They
// speak no NATS, so they run only the MQTT rows that need no NATS client.

const (
	mqttOnlyMosquitto = "mosquitto"
	mqttOnlyMochi     = "mochi-mqtt"
)

// serves says whether server k can run row r.
func (k serverKind) serves(r row) bool {
	if k.MQTTOnly == "" {
		return true
	}
	return r.Kind == "mqtt" && r.MQTT != "nats"
}

// mqttBrokers returns the MQTT-only servers that can run here, and a note
// for each one that cannot.
func mqttBrokers(binDir string, noBuild bool) ([]serverKind, []string) {
	var ks []serverKind
	var notes []string
	if p, err := exec.LookPath("mosquitto"); err == nil {
		ks = append(ks, serverKind{Name: mqttOnlyMosquitto, Bin: p, MQTTOnly: mqttOnlyMosquitto})
	} else if p := "/usr/sbin/mosquitto"; fileExists(p) {
		ks = append(ks, serverKind{Name: mqttOnlyMosquitto, Bin: p, MQTTOnly: mqttOnlyMosquitto})
	} else {
		notes = append(notes, "mosquitto column left out: no `mosquitto` binary (Debian: `apt-get install mosquitto`).")
	}
	mochi := filepath.Join(binDir, "mochi-mqtt")
	if !noBuild {
		cmd := exec.Command("go", "build", "-o", mochi, "github.com/mochi-mqtt/server/v2/cmd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			notes = append(notes, fmt.Sprintf("mochi-mqtt column left out: build failed: %v.", err))
			return ks, notes
		}
	}
	if fileExists(mochi) {
		ks = append(ks, serverKind{Name: mqttOnlyMochi, Bin: mochi, MQTTOnly: mqttOnlyMochi})
	} else {
		notes = append(notes, "mochi-mqtt column left out: no binary at "+mochi+".")
	}
	return ks, notes
}

// sessionStorageNote says how each broker keeps the persistent sessions
// the session rows set up: they differ in what a session costs.
const sessionStorageNote = "Session rows: evnats and nats-server write each persistent session to disk as it is set up (evnats: a record in its MQTT session store; nats-server: JetStream streams and consumers); " +
	"mosquitto (persistence true) keeps them in memory and saves them at shutdown and every autosave interval; mochi-mqtt's command has no storage hook and keeps them in memory only."

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// startMQTTBroker starts an MQTT-only broker on a free port with its state
// under dir, configured as its users would for these rows (anonymous
// clients; queues deep enough that no row's throttled lag drops a message).
func startMQTTBroker(k serverKind, dir string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var args []string
	switch k.MQTTOnly {
	case mqttOnlyMosquitto:
		conf := filepath.Join(dir, "mosquitto.conf")
		// Persistence on, as for persistent sessions in production: it
		// saves its in-memory state at shutdown and every autosave
		// interval (30 minutes), not as sessions are set up.
		body := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\npersistence true\npersistence_location %s/\nlog_dest none\n", port, dir)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, "", err
		}
		args = []string{"-c", conf}
	case mqttOnlyMochi:
		ws, err := freePort()
		if err != nil {
			return nil, "", err
		}
		info, err := freePort()
		if err != nil {
			return nil, "", err
		}
		args = []string{"-tcp", addr, "-ws", "127.0.0.1:" + strconv.Itoa(ws), "-info", "127.0.0.1:" + strconv.Itoa(info)}
	default:
		return nil, "", fmt.Errorf("unknown MQTT broker %q", k.MQTTOnly)
	}
	cmd := exec.Command(k.Bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	p := &proc{cmd: cmd, port: port}
	if err := waitListening(addr); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%s: %w", k.Name, err)
	}
	return p, addr, nil
}

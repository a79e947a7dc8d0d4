// Command evnats runs the evnats broker: a NATS-compatible server on gnet
// event loops. Its flags follow nats-server's where they overlap.
package main

import (
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof" // served only with -profile
	"os"
	"runtime"

	"github.com/evnats/evnats/loop"
	_ "github.com/evnats/evnats/loop/leaf" // joins hubs as a leaf node (loop.RegisterLeaf)
	_ "github.com/evnats/evnats/mqtt"      // serves the MQTT listener (loop.RegisterMQTT)
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "evnats:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cl, err := parseCmdline(args)
	if err != nil || cl.version {
		return err
	}
	if cl.signal != "" {
		return sendSignal(cl.signal, cl.pidFile())
	}
	opts, err := cl.load()
	if err != nil {
		return err
	}
	if cl.profPort > 0 {
		go func() { _ = http.ListenAndServe(fmt.Sprintf("127.0.0.1:%d", cl.profPort), nil) }()
	}
	return serve(opts, cl.load, cl.lameDuck)
}

// cmdline is what the command line asks for.
type cmdline struct {
	version, lameDuck bool
	profPort          int
	signal            string // --signal's argument; "" to serve
	flagPidFile       string // -P, when given
	// load builds the options from the configuration file, read again
	// on each call (each reload), with the command line's flags over it.
	load func() (loop.Options, error)
}

// pidFile is where --signal finds the pid without "=pid": -P, else the
// configuration file's pid_file.
func (cl *cmdline) pidFile() string {
	if cl.flagPidFile != "" {
		return cl.flagPidFile
	}
	if o, err := cl.load(); err == nil {
		return o.PidFile
	}
	return ""
}

func parseCmdline(args []string) (*cmdline, error) {
	fs := flag.NewFlagSet("evnats", flag.ContinueOnError)
	var (
		o           loop.Options
		configFile  string
		lameDuck    bool
		version     bool
		profPort    int
		tf          tlsFlags
		logTime     bool
		sig         string
		dv, dvv, vv bool
	)
	fs.StringVar(&o.Host, "a", "", "bind address (default 0.0.0.0)")
	fs.StringVar(&o.Host, "addr", "", "bind address (default 0.0.0.0)")
	fs.IntVar(&o.Port, "p", 0, "client port (default 4222)")
	fs.IntVar(&o.Port, "port", 0, "client port (default 4222)")
	fs.IntVar(&o.HTTPPort, "m", 0, "HTTP monitoring port (0: off)")
	fs.IntVar(&o.HTTPPort, "http_port", 0, "HTTP monitoring port (0: off)")
	fs.IntVar(&o.HTTPSPort, "ms", 0, "HTTPS monitoring port, with the tls certificate (0: off)")
	fs.IntVar(&o.HTTPSPort, "https_port", 0, "HTTPS monitoring port, with the tls certificate (0: off)")
	fs.StringVar(&o.ServerName, "n", "", "server name")
	fs.StringVar(&o.ServerName, "name", "", "server name")
	fs.IntVar(&o.Loops, "loops", 0, fmt.Sprintf("gnet event loops (default GOMAXPROCS=%d)", runtime.GOMAXPROCS(0)))
	fs.StringVar(&o.IO, "io", "", "transport: gnet (event loops) or goroutine (one goroutine per connection)")
	fs.IntVar(&o.MaxPayload, "max_payload", 0, "maximum message payload in bytes (default 1MB, at most 64MB)")
	fs.IntVar(&o.MaxPending, "max_pending", 0, "most bytes pending for one connection before it is cut as a slow consumer (default 64MB)")
	fs.DurationVar(&o.WriteDeadline, "write_deadline", 0, "cut a connection whose socket takes nothing for this long (default 10s)")
	fs.IntVar(&o.FlowHighWater, "flow_high_water", 0, "pending bytes at which a subscriber holds its publishers (default min(max_pending/4, 8MB))")
	fs.IntVar(&o.FlowLowWater, "flow_low_water", 0, "pending bytes below which held publishers resume (default half the high-water mark)")
	fs.DurationVar(&o.FlowStallWindow, "flow_stall_window", 0, "a subscriber over the high-water mark whose socket takes nothing for this long no longer holds publishers (default 100ms)")
	fs.StringVar(&o.Username, "user", "", "user required for connections")
	fs.StringVar(&o.Password, "pass", "", "password required for connections")
	fs.StringVar(&o.Token, "auth", "", "authorization token required for connections")
	fs.BoolVar(&o.JetStream, "js", false, "enable JetStream")
	fs.BoolVar(&o.JetStream, "jetstream", false, "enable JetStream")
	fs.StringVar(&o.StoreDir, "sd", "", "JetStream store directory (default ./data)")
	fs.StringVar(&o.StoreDir, "store_dir", "", "JetStream store directory (default ./data)")
	fs.BoolVar(&o.JetStreamSync.Always, "sync_always", false, "fsync every JetStream write before acknowledging it")
	fs.IntVar(&o.MQTTPort, "mqtt_port", 0, "MQTT 3.1.1 and 5 listener port (0: off; -1: a free port; 1883 is MQTT's)")
	fs.StringVar(&o.MQTTHost, "mqtt_host", "", "MQTT bind address (default: the client bind address)")
	fs.IntVar(&o.MQTTMaxSessionQueueMsgs, "mqtt_max_session_queue_msgs", 0, "most QoS 1/2 messages an MQTT session holds for its client (default 100000)")
	fs.IntVar(&o.MQTTMaxSessionQueueBytes, "mqtt_max_session_queue_bytes", 0, "most bytes an MQTT session holds for its client (default 64MiB)")
	fs.IntVar(&o.MQTTMaxRetainedMsgs, "mqtt_max_retained_msgs", 0, "most MQTT retained messages the server keeps (default 100000)")
	fs.IntVar(&o.MQTTMaxRetainedBytes, "mqtt_max_retained_bytes", 0, "most bytes of MQTT retained messages the server keeps (default 64MiB)")
	fs.BoolVar(&tf.on, "tls", false, "enable TLS for clients (needs --tlscert and --tlskey)")
	fs.StringVar(&tf.cert, "tlscert", "", "server certificate file")
	fs.StringVar(&tf.key, "tlskey", "", "private key of the server certificate")
	fs.StringVar(&tf.ca, "tlscacert", "", "CA file that signs client certificates (for --tlsverify)")
	fs.BoolVar(&tf.verify, "tlsverify", false, "enable TLS and require client certificates signed by --tlscacert")
	fs.StringVar(&configFile, "c", "", "configuration file (nats-server syntax)")
	fs.StringVar(&configFile, "config", "", "configuration file (nats-server syntax)")
	fs.BoolVar(&o.Debug, "D", false, "enable debug logging")
	fs.BoolVar(&o.Debug, "debug", false, "enable debug logging")
	fs.BoolVar(&o.Trace, "V", false, "enable protocol tracing")
	fs.BoolVar(&o.Trace, "trace", false, "enable protocol tracing")
	fs.BoolVar(&vv, "VV", false, "protocol tracing (as -V: the system account is not traced apart)")
	fs.BoolVar(&dv, "DV", false, "debug logging and protocol tracing")
	fs.BoolVar(&dvv, "DVV", false, "debug logging and protocol tracing (as -DV)")
	fs.StringVar(&o.LogFile, "l", "", "log to this file")
	fs.StringVar(&o.LogFile, "log", "", "log to this file")
	fs.Int64Var(&o.LogSizeLimit, "log_size_limit", 0, "rotate the log file past this many bytes (0: never)")
	fs.BoolVar(&logTime, "T", true, "timestamp log lines")
	fs.BoolVar(&logTime, "logtime", true, "timestamp log lines")
	fs.BoolVar(&o.LogTimeUTC, "logtime_utc", false, "log timestamps in UTC")
	fs.BoolVar(&o.Syslog, "s", false, "log to the local syslog")
	fs.BoolVar(&o.Syslog, "syslog", false, "log to the local syslog")
	fs.StringVar(&o.RemoteSyslog, "r", "", "log to a remote syslog (udp://host:514)")
	fs.StringVar(&o.RemoteSyslog, "remote_syslog", "", "log to a remote syslog (udp://host:514)")
	fs.StringVar(&o.PidFile, "P", "", "write the process id to this file")
	fs.StringVar(&o.PidFile, "pid", "", "write the process id to this file")
	fs.StringVar(&sig, "sl", "", "send a signal to a running evnats: stop, quit, term, reopen, reload or ldm, as cmd[=pid or pid file]")
	fs.StringVar(&sig, "signal", "", "send a signal to a running evnats: stop, quit, term, reopen, reload or ldm, as cmd[=pid or pid file]")
	fs.BoolVar(&lameDuck, "lame_duck", false, "start in lame duck mode: serve no new clients, drain, exit")
	fs.IntVar(&profPort, "profile", 0, "serve Go pprof on this port (127.0.0.1) for profiling")
	fs.BoolVar(&version, "v", false, "print version and exit")
	fs.BoolVar(&version, "version", false, "print version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if version {
		fmt.Println("evnats", loop.Version)
		return &cmdline{version: true}, nil
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// -DV, -VV and -DVV are nats-server's shorthands.
	if dv || dvv {
		o.Debug, o.Trace = true, true
		set["D"], set["V"] = true, true
	}
	if vv {
		o.Trace, set["V"] = true, true
	}
	o.NoLogTime = !logTime
	o.ConfigFile = configFile
	load := func() (loop.Options, error) {
		opts := o
		if configFile != "" {
			var fromFile loop.Options
			if err := loop.ApplyConfigFile(&fromFile, configFile); err != nil {
				return opts, err
			}
			opts = mergeFlags(fromFile, o, set)
		}
		return opts, tf.apply(&opts, set)
	}
	return &cmdline{lameDuck: lameDuck, profPort: profPort, signal: sig, flagPidFile: o.PidFile, load: load}, nil
}

// mergeFlags overlays the flags the user set on the options from the file.
func mergeFlags(base, flags loop.Options, set map[string]bool) loop.Options {
	pick := func(names ...string) bool {
		for _, n := range names {
			if set[n] {
				return true
			}
		}
		return false
	}
	if pick("a", "addr") {
		base.Host = flags.Host
	}
	if pick("p", "port") {
		base.Port = flags.Port
	}
	if pick("m", "http_port") {
		base.HTTPPort = flags.HTTPPort
	}
	if pick("ms", "https_port") {
		base.HTTPSPort = flags.HTTPSPort
	}
	if pick("n", "name") {
		base.ServerName = flags.ServerName
	}
	if pick("mqtt_port") {
		base.MQTTPort = flags.MQTTPort
	}
	if pick("mqtt_host") {
		base.MQTTHost = flags.MQTTHost
	}
	if pick("mqtt_max_session_queue_msgs") {
		base.MQTTMaxSessionQueueMsgs = flags.MQTTMaxSessionQueueMsgs
	}
	if pick("mqtt_max_session_queue_bytes") {
		base.MQTTMaxSessionQueueBytes = flags.MQTTMaxSessionQueueBytes
	}
	if pick("mqtt_max_retained_msgs") {
		base.MQTTMaxRetainedMsgs = flags.MQTTMaxRetainedMsgs
	}
	if pick("mqtt_max_retained_bytes") {
		base.MQTTMaxRetainedBytes = flags.MQTTMaxRetainedBytes
	}
	if pick("loops") {
		base.Loops = flags.Loops
	}
	if pick("io") {
		base.IO = flags.IO
	}
	if pick("max_payload") {
		base.MaxPayload = flags.MaxPayload
	}
	if pick("max_pending") {
		base.MaxPending = flags.MaxPending
	}
	if pick("write_deadline") {
		base.WriteDeadline = flags.WriteDeadline
	}
	if pick("flow_high_water") {
		base.FlowHighWater = flags.FlowHighWater
	}
	if pick("flow_low_water") {
		base.FlowLowWater = flags.FlowLowWater
	}
	if pick("flow_stall_window") {
		base.FlowStallWindow = flags.FlowStallWindow
	}
	if pick("user") {
		base.Username = flags.Username
	}
	if pick("pass") {
		base.Password = flags.Password
	}
	if pick("auth") {
		base.Token = flags.Token
	}
	if pick("js", "jetstream") {
		base.JetStream = flags.JetStream
	}
	if pick("sd", "store_dir") {
		base.StoreDir = flags.StoreDir
	}
	if pick("sync_always") {
		base.JetStreamSync.Always = flags.JetStreamSync.Always
	}
	if pick("D", "debug") {
		base.Debug = flags.Debug
	}
	if pick("V", "trace") {
		base.Trace = flags.Trace
	}
	if pick("l", "log") {
		base.LogFile = flags.LogFile
	}
	if pick("log_size_limit") {
		base.LogSizeLimit = flags.LogSizeLimit
	}
	if pick("T", "logtime") {
		base.NoLogTime = flags.NoLogTime
	}
	if pick("logtime_utc") {
		base.LogTimeUTC = flags.LogTimeUTC
	}
	if pick("s", "syslog") {
		base.Syslog = flags.Syslog
	}
	if pick("r", "remote_syslog") {
		base.RemoteSyslog = flags.RemoteSyslog
	}
	if pick("P", "pid") {
		base.PidFile = flags.PidFile
	}
	base.ConfigFile = flags.ConfigFile
	return base
}

// tlsFlags are --tls, --tlscert, --tlskey, --tlscacert and --tlsverify.
type tlsFlags struct {
	on, verify    bool
	cert, key, ca string
}

// apply overrides the TLS options with the flags, as nats-server does:
// --tls=false turns TLS off; any other --tls* flag builds the
// certificate settings from the flags alone (the file's timeout and
// handshake_first stay), and needs --tlscert and --tlskey.
func (f tlsFlags) apply(o *loop.Options, set map[string]bool) error {
	if set["tls"] && !f.on {
		o.TLS = nil
		return nil
	}
	if !set["tls"] && !set["tlscert"] && !set["tlskey"] && !set["tlscacert"] && !set["tlsverify"] {
		return nil
	}
	if f.cert == "" {
		return fmt.Errorf("TLS server certificate must be present and valid (--tlscert)")
	}
	if f.key == "" {
		return fmt.Errorf("TLS server private key must be present and valid (--tlskey)")
	}
	t := &loop.TLSOptions{}
	if o.TLS != nil {
		t.Timeout, t.HandshakeFirst = o.TLS.Timeout, o.TLS.HandshakeFirst
	}
	t.CertFile, t.KeyFile, t.CAFile, t.Verify = f.cert, f.key, f.ca, f.verify
	o.TLS = t
	return nil
}

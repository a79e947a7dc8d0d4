// Command bench runs evnats (gnet loops), evnats --io=goroutine and
// nats-server side by side on 127.0.0.1 with the same nats.go workloads,
// alternating servers round by round, and reports medians as a Markdown
// table, a CSV and an SVG chart under bench/results/.
//
//	go run ./bench                 # full run (minutes)
//	go run ./bench -quick          # smoke run (seconds)
//	go run ./bench -rows 'fan-out|4x4' -rounds 7
//	go run ./bench -loops-sweep    # fan-out and 4x4 for loops = 1..2xCPUs
//	go run ./bench -conns 10000,50000
//	go run ./bench -mqtt-sessions 10000x10
//	go run ./bench -rows req/rep -also evnats-main=/tmp/evnats-main
//	go run ./bench -url tls://127.0.0.1:4222 -tlsca ca.pem -rows TLS
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	defer removeBenchTLS()
	var (
		rounds     = flag.Int("rounds", 5, "rounds; servers alternate within each round")
		quick      = flag.Bool("quick", false, "smoke run: 1 round, 2% of the messages, no files unless -out is given")
		rowsRe     = flag.String("rows", "", "regexp selecting rows by name (default all)")
		out        = flag.String("out", "bench/results", "directory for results.md, results.csv and ratios.svg")
		bin        = flag.String("bin", "bin", "directory for the server binaries")
		sweep      = flag.Bool("loops-sweep", false, "sweep evnats --loops over the fan-out and 4x4 rows")
		maxLoops   = flag.Int("max-loops", 2*runtime.NumCPU(), "largest loop count for -loops-sweep")
		conns      = flag.String("conns", "", "comma-separated idle connection counts for the memory row (e.g. 10000,50000)")
		scale      = flag.Float64("scale", 1, "multiply every row's message count")
		skipServer = flag.String("skip", "", "regexp of server names to leave out")
		url        = flag.String("url", "", "run the selected rows once against this running server (for profiling), then exit")
		mqttAddr   = flag.String("mqtt", "127.0.0.1:1883", "with -url: the running server's MQTT host:port")
		noBuild    = flag.Bool("nobuild", false, "use the binaries already in -bin instead of building them")
		sessions   = flag.String("mqtt-sessions", "", "NxS: set up N persistent MQTT sessions with S QoS 1 subscriptions each, report time and memory")
		loopList   = flag.String("loops", "", "comma-separated loop counts for -loops-sweep (default 1..max-loops)")
		also       = flag.String("also", "", "NAME=BINARY[,...]: more servers in the same rounds (say, evnats built from main)")
		tlsCA      = flag.String("tlsca", "", "with -url tls://...: the CA file that signs the running server's certificate")
		scrape     = flag.Duration("scrape", 0, "add an evnats-scraped column: evnats with /varz, /connz and /metrics fetched this often (say 100ms); with -also, a NAME-scraped column for each of those too")
		cli        = flag.String("natscli", "", "nats binary for the natscli rows; empty: build natscli "+natscliVersion+" into -bin; off: skip those rows")
	)
	flag.Parse()
	raiseFileLimit()
	if *quick {
		*rounds = 1
		*scale *= 0.02
	}
	selected := rows
	if *rowsRe != "" {
		re := regexp.MustCompile(*rowsRe)
		selected = nil
		for _, r := range rows {
			if re.MatchString(r.Name) {
				selected = append(selected, r)
			}
		}
	}
	if !*sweep && *sessions == "" && *conns == "" { // those modes run no natscli row
		selected = prepareNatscli(selected, *cli, *bin, *noBuild)
	}
	if *url != "" {
		rootCA = *tlsCA
		runAgainst(*url, *mqttAddr, selected, *scale)
		return
	}
	evBin, natsBin := filepath.Join(*bin, "evnats"), filepath.Join(*bin, "nats-server")
	if !*noBuild {
		var err error
		if evBin, natsBin, err = buildBinaries(*bin); err != nil {
			fatal(err)
		}
	}
	hubBin = natsBin
	servers := []serverKind{
		{Name: "evnats", Bin: evBin},
		{Name: "evnats-goroutine", Bin: evBin, Args: []string{"--io", "goroutine"}},
		{Name: "nats-server", Bin: natsBin},
	}
	if *scrape > 0 {
		servers = append(servers, serverKind{Name: "evnats-scraped", Bin: evBin, Scrape: *scrape})
	}
	for _, kv := range strings.Split(*also, ",") {
		if name, path, ok := strings.Cut(kv, "="); ok {
			servers = append(servers, serverKind{Name: name, Bin: path})
			if *scrape > 0 { // the other build scraped too, to compare scrape costs
				servers = append(servers, serverKind{Name: name + "-scraped", Bin: path, Scrape: *scrape})
			}
		}
	}
	if hasMQTT(selected) || *sessions != "" {
		ks, notes := mqttBrokers(*bin, *noBuild)
		servers = append(servers, ks...)
		for _, n := range notes {
			progress("%s", n)
			reportNotes = append(reportNotes, n)
		}
		if len(ks) > 0 && (hasSessionRow(selected) || *sessions != "") {
			reportNotes = append(reportNotes, sessionStorageNote)
		}
	}
	if *skipServer != "" {
		re := regexp.MustCompile(*skipServer)
		var keep []serverKind
		for _, s := range servers {
			if !re.MatchString(s.Name) {
				keep = append(keep, s)
			}
		}
		servers = keep
	}
	env := describeMachine()
	progress("machine: %s", env)
	switch {
	case *sweep:
		var loops []int
		for l := 1; l <= *maxLoops; l++ {
			loops = append(loops, l)
		}
		if *loopList != "" {
			loops = parseInts(*loopList)
		}
		runSweep(evBin, natsBin, *rounds, *scale, loops, *out, env)
	case *sessions != "":
		var n, subs int
		if _, err := fmt.Sscanf(*sessions, "%dx%d", &n, &subs); err != nil {
			fatal(fmt.Errorf("-mqtt-sessions: want NxS, like 10000x10: %w", err))
		}
		runSessionScale(servers, n, subs, *out, env)
	case *conns != "":
		runConnScale(servers, parseInts(*conns), *out, env)
	default:
		res := runMatrix(servers, selected, *rounds, *scale)
		md := renderMarkdown(servers, selected, res, *rounds, env)
		fmt.Println(md)
		if !*quick || isFlagSet("out") {
			writeResults(*out, md, servers, selected, res, env)
		}
	}
}

// prepareNatscli sets natscliBin for the selected natscli rows (building
// natscli unless told which binary to use) or drops those rows, saying why
// on stderr and in the report.
func prepareNatscli(rs []row, flagValue, binDir string, noBuild bool) []row {
	if _, note := withoutNatscli(rs, nil); note == "" {
		return rs // no natscli row selected
	}
	var err error
	switch {
	case flagValue == "off":
		err = fmt.Errorf("-natscli off")
	case flagValue != "":
		if !natscliHasVersion(flagValue) {
			err = fmt.Errorf("%s is not natscli %s", flagValue, natscliVersion)
		} else {
			natscliBin = flagValue
		}
	case noBuild:
		if b := filepath.Join(binDir, "nats"); natscliHasVersion(b) {
			natscliBin = b
		} else {
			err = fmt.Errorf("-nobuild and no natscli %s at %s", natscliVersion, b)
		}
	default:
		natscliBin, err = buildNatscli(binDir)
	}
	if err == nil {
		// absolute: natscli runs in the temporary directory
		if natscliBin, err = filepath.Abs(natscliBin); err == nil {
			return rs
		}
	}
	keep, note := withoutNatscli(rs, err)
	progress("%s", note)
	reportNotes = append(reportNotes, note)
	return keep
}

// reportNotes are printed under the results table (rows skipped and why).
var reportNotes []string

// results[row][server] holds every round's sample.
type results map[string]map[string][]sample

func runMatrix(servers []serverKind, rs []row, rounds int, scale float64) results {
	res := results{}
	total := 0
	for _, r := range rs {
		for _, k := range servers {
			if k.serves(r) {
				total += rounds
			}
		}
	}
	done := 0
	start := time.Now()
	for round := 0; round < rounds; round++ {
		for _, r := range rs {
			if res[r.Name] == nil {
				res[r.Name] = map[string][]sample{}
			}
			n := max(int(float64(r.N)*scale), 1000)
			// Rotate the server order each round so none always goes first.
			for i := range servers {
				k := servers[(i+round)%len(servers)]
				if !k.serves(r) {
					continue
				}
				s := runOnce(k, r, n)
				res[r.Name][k.Name] = append(res[r.Name][k.Name], s)
				done++
				line := fmt.Sprintf("%.0f msgs/s, %.0f ns CPU/msg", s.MsgsPerSec(), s.CPUPerMsg())
				if s.Failure != "" {
					line = "FAILED: " + s.Failure
				}
				progress("[%d/%d %s] round %d %-20s %-17s %s", done, total, time.Since(start).Round(time.Second), round+1, r.Name, k.Name, line)
			}
		}
	}
	return res
}

func runOnce(k serverKind, r row, n int) sample {
	if k.MQTTOnly != "" {
		return runOnceMQTTOnly(k, r, n)
	}
	if r.JS != "" {
		dir, err := os.MkdirTemp("", "evbench-js-")
		if err != nil {
			return sample{Failure: err.Error()}
		}
		defer os.RemoveAll(dir)
		k.Args = append(append([]string(nil), k.Args...), "-js", "-sd", dir)
	}
	tg := target{}
	if r.TLS {
		f, err := benchTLS()
		if err != nil {
			return sample{Failure: err.Error()}
		}
		// Both servers take nats-server's flags.
		k.Args = append(append([]string(nil), k.Args...), "--tls", "--tlscert", f.Cert, "--tlskey", f.Key)
	}
	if r.WS {
		dir, err := os.MkdirTemp("", "evbench-ws-")
		if err != nil {
			return sample{Failure: err.Error()}
		}
		defer os.RemoveAll(dir)
		port, err := freePort()
		if err != nil {
			return sample{Failure: err.Error()}
		}
		// Both servers read the same websocket block.
		conf := filepath.Join(dir, "ws.conf")
		body := fmt.Sprintf("websocket { listen: \"127.0.0.1:%d\", no_tls: true }\n", port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return sample{Failure: err.Error()}
		}
		k.Args = append(append([]string(nil), k.Args...), "-c", conf)
		tg.WS = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if r.MQTT != "" {
		dir, err := os.MkdirTemp("", "evbench-mqtt-")
		if err != nil {
			return sample{Failure: err.Error()}
		}
		defer os.RemoveAll(dir)
		port, err := freePort()
		if err != nil {
			return sample{Failure: err.Error()}
		}
		args, err := mqttArgs(k, port, dir)
		if err != nil {
			return sample{Failure: err.Error()}
		}
		k.Args = append(append([]string(nil), k.Args...), args...)
		tg.MQTT = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if r.Leaf {
		hub, args, cleanup, err := startLeafHub()
		if err != nil {
			return sample{Failure: err.Error()}
		}
		defer cleanup()
		k.Args = append(append([]string(nil), k.Args...), args...)
		tg.Sub = hub.URL
	}
	p, err := startServer(k)
	if err != nil {
		return sample{Failure: err.Error()}
	}
	defer p.stop()
	if tg.MQTT != "" {
		if err := waitListening(tg.MQTT); err != nil {
			return sample{Failure: err.Error()}
		}
	}
	tg.URL = p.URL
	if r.TLS {
		tg.URL = strings.Replace(p.URL, "nats://", "tls://", 1)
	}
	if tg.WS != "" {
		if err := waitListening(tg.WS); err != nil {
			return sample{Failure: err.Error()}
		}
		tg.URL = "ws://" + tg.WS
	}
	w := &window{pid: p.pid()}
	s, err := runRow(r, tg, w, n)
	if err != nil {
		return sample{Failure: err.Error()}
	}
	s.Dur = w.end.Sub(w.start)
	s.CPU = time.Duration(w.cpu1 - w.cpu0)
	return s
}

// runOnceMQTTOnly runs an MQTT row against an MQTT-only broker.
func runOnceMQTTOnly(k serverKind, r row, n int) sample {
	dir, err := os.MkdirTemp("", "evbench-broker-")
	if err != nil {
		return sample{Failure: err.Error()}
	}
	defer os.RemoveAll(dir)
	p, addr, err := startMQTTBroker(k, dir)
	if err != nil {
		return sample{Failure: err.Error()}
	}
	defer p.stop()
	w := &window{pid: p.pid()}
	s, err := runRow(r, target{MQTT: addr}, w, n)
	if err != nil {
		return sample{Failure: err.Error()}
	}
	s.Dur = w.end.Sub(w.start)
	s.CPU = time.Duration(w.cpu1 - w.cpu0)
	return s
}

func hasMQTT(rs []row) bool {
	for _, r := range rs {
		if r.Kind == "mqtt" {
			return true
		}
	}
	return false
}

func hasSessionRow(rs []row) bool {
	for _, r := range rs {
		if r.MQTT == "sessions" {
			return true
		}
	}
	return false
}

// hubBin is the nats-server binary leaf rows start as the hub.
var hubBin string

// startLeafHub starts a nats-server hub with a leafnode port for a leaf
// row, and returns the arguments that make the measured server its leaf
// (a config file both servers read alike) and what stops the hub.
func startLeafHub() (*proc, []string, func(), error) {
	dir, err := os.MkdirTemp("", "evbench-leaf-")
	if err != nil {
		return nil, nil, nil, err
	}
	lport, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	hubConf, leafConf := filepath.Join(dir, "hub.conf"), filepath.Join(dir, "leaf.conf")
	if err := os.WriteFile(hubConf, fmt.Appendf(nil, "leafnodes { listen: \"127.0.0.1:%d\" }\n", lport), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	body := fmt.Sprintf("leafnodes { remotes = [ { url: \"nats-leaf://127.0.0.1:%d\" } ] }\n", lport)
	if err := os.WriteFile(leafConf, []byte(body), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	hub, err := startServer(serverKind{Name: "hub", Bin: hubBin, Args: []string{"-c", hubConf}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, nil, err
	}
	return hub, []string{"-c", leafConf}, func() { hub.stop(); os.RemoveAll(dir) }, nil
}

// runAgainst drives an already running server, e.g. one under a profiler.
func runAgainst(url, mqttAddr string, rs []row, scale float64) {
	for _, r := range rs {
		w := &window{}
		s, err := runRow(r, target{URL: url, MQTT: mqttAddr}, w, max(int(float64(r.N)*scale), 1000))
		if err != nil {
			progress("%s: %v", r.Name, err)
			continue
		}
		s.Dur = w.end.Sub(w.start)
		line := fmt.Sprintf("%-20s %s msgs/s", r.Name, commas(s.MsgsPerSec()))
		if r.ReqRep {
			line += fmt.Sprintf(", p50 %s p90 %s p99 %s p99.9 %s", us(s.Lat.P50), us(s.Lat.P90), us(s.Lat.P99), us(s.Lat.P999))
		}
		progress("%s", line)
	}
}

func parseInts(list string) []int {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

func isFlagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func describeMachine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs, %s/%s, %s", model, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func writeFile(dir, name, content string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		fatal(err)
	}
	progress("wrote %s", path)
}

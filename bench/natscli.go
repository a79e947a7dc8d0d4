package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// natscliVersion is the natscli whose `nats bench` measures the natscli
// rows, so anyone can rerun them with the same tool.
const natscliVersion = "v0.5.0"

// natscliBin is the nats binary the natscli rows run; empty when it could
// not be built (the rows are then skipped).
var natscliBin string

// natscliRate finds the throughput in `nats bench` output, e.g.
// "NATS JetStream ordered ephemeral consumer stats: 98,011 msgs/sec ~ 12 MiB/sec".
var natscliRate = regexp.MustCompile(`stats: ([0-9,.]+) msgs/sec`)

// buildNatscli installs natscli into binDir unless the binary there already
// reports natscliVersion. A fresh machine needs only Go and the module proxy.
func buildNatscli(binDir string) (string, error) {
	dir, err := filepath.Abs(binDir)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats")
	if natscliHasVersion(bin) {
		return bin, nil
	}
	progress("building natscli %s into %s (the first time downloads its modules: minutes)", natscliVersion, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/nats-io/natscli/nats@"+natscliVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go install natscli %s: %v: %s", natscliVersion, err, lastLines(out, 3))
	}
	if !natscliHasVersion(bin) {
		return "", fmt.Errorf("%s does not report natscli %s", bin, natscliVersion)
	}
	return bin, nil
}

func natscliHasVersion(bin string) bool {
	out, err := exec.Command(bin, "--version").Output()
	return err == nil && strings.TrimSpace(string(out)) == natscliVersion
}

// withoutNatscli drops the natscli rows when the tool is missing, saying why.
func withoutNatscli(rs []row, why error) ([]row, string) {
	var keep, dropped []row
	for _, r := range rs {
		if r.CLI != nil {
			dropped = append(dropped, r)
		} else {
			keep = append(keep, r)
		}
	}
	if len(dropped) == 0 {
		return rs, ""
	}
	return keep, fmt.Sprintf("natscli rows skipped (%d): %v", len(dropped), why)
}

// natscliRow is a row measured by `nats bench`: Setup runs outside the
// window (filling the stream or bucket), Measure inside it; "N" in either
// stands for the row's message count.
type natscliRow struct {
	Setup   [][]string
	Measure []string
}

// runNatscli runs the row's natscli commands against url. The rate is what
// natscli reports; the window (and the server CPU over it) spans the whole
// measured process, connection and stream lookup included.
func runNatscli(r row, url string, w *window, n int) (sample, error) {
	if natscliBin == "" {
		return sample{}, errors.New("natscli is not built")
	}
	defer cleanNatscli(url)
	cleanNatscli(url) // a shared server (-url, tests) may hold a previous row's stream
	for _, args := range r.CLI.Setup {
		if _, err := natscli(url, args, n, r.Payload); err != nil {
			return sample{}, fmt.Errorf("setup: %w", err)
		}
	}
	w.Start()
	out, err := natscli(url, r.CLI.Measure, n, r.Payload)
	w.Stop()
	if err != nil {
		return sample{}, err
	}
	rate, err := parseNatscliRate(out)
	if err != nil {
		return sample{}, err
	}
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload), Rate: rate}, nil
}

// natscli runs one `nats bench` command, substituting N and the size.
func natscli(url string, args []string, n, size int) (string, error) {
	full := []string{"-s", url, "--no-context"}
	for _, a := range args {
		switch a {
		case "N":
			a = strconv.Itoa(n)
		case "SIZE":
			a = strconv.Itoa(size) + "B"
		}
		full = append(full, a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, natscliBin, full...)
	cmd.Dir = os.TempDir() // natscli may write CSV or history files beside it
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("nats %s: %v: %s", strings.Join(full[3:], " "), err, lastLines(out, 2))
	}
	return string(out), nil
}

// parseNatscliRate reads the msgs/sec figure from `nats bench` output.
func parseNatscliRate(out string) (float64, error) {
	m := natscliRate.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no msgs/sec in natscli output: %s", lastLines([]byte(out), 2))
	}
	return strconv.ParseFloat(strings.ReplaceAll(m[1], ",", ""), 64)
}

// cleanNatscli removes natscli's default stream and bucket.
func cleanNatscli(url string) {
	nc, err := dial(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, "benchstream")
	_ = js.DeleteStream(ctx, "KV_benchbucket")
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(bytes.TrimSpace(b))), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// serverKind is one of the servers compared side by side.
type serverKind struct {
	Name string   // column name in the report
	Bin  string   // binary path
	Args []string // extra arguments
	// MQTTOnly names an MQTT-only broker (mqttbrokers.go); empty for a
	// NATS server.
	MQTTOnly string
	// Scrape, when set, opens the monitoring port and fetches /varz,
	// /connz and /metrics every Scrape while the server runs: the cost of
	// being watched (a Prometheus scrape, a dashboard).
	Scrape time.Duration
}

// buildBinaries compiles evnats and the pinned nats-server into binDir.
func buildBinaries(binDir string) (evnats, natsServer string, err error) {
	evnats = filepath.Join(binDir, "evnats")
	natsServer = filepath.Join(binDir, "nats-server")
	for _, b := range [][2]string{{evnats, "./cmd/evnats"}, {natsServer, "github.com/nats-io/nats-server/v2"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static: runs on any Linux box it is copied to
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", "", fmt.Errorf("build %s: %w", b[1], err)
		}
	}
	return evnats, natsServer, nil
}

// proc is a running server process.
type proc struct {
	cmd        *exec.Cmd
	port       int
	URL        string
	stopScrape chan struct{} // closed by stop; nil without scraping
	scraped    chan struct{} // closed when the scraper has stopped
}

func startServer(k serverKind) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, k.Args...)
	mport := 0
	if k.Scrape > 0 {
		if mport, err = freePort(); err != nil {
			return nil, err
		}
		args = append(args, "-m", strconv.Itoa(mport))
	}
	cmd := exec.Command(k.Bin, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, port: port, URL: fmt.Sprintf("nats://127.0.0.1:%d", port)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			if mport != 0 {
				p.scrape(mport, k.Scrape)
			}
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not start on port %d", k.Name, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitListening waits until addr accepts connections.
func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// scrape fetches the monitoring endpoints every d until stop.
func (p *proc) scrape(port int, d time.Duration) {
	p.stopScrape, p.scraped = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(p.scraped)
		cl := &http.Client{Timeout: 5 * time.Second}
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-p.stopScrape:
				return
			case <-t.C:
			}
			for _, path := range []string{"/varz", "/connz", "/metrics"} {
				if resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path)); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
}

func (p *proc) stop() {
	if p.stopScrape != nil {
		close(p.stopScrape)
		<-p.scraped
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

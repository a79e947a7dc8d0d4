package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"
)

// runConnScale opens n idle client connections (CONNECT, PING, PONG) to each
// server and reports the server's resident memory per connection. Source
// addresses rotate over 127.x.0.2.. so large counts do not run out of ports.
func runConnScale(servers []serverKind, counts []int, out, env string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Idle connections on %s: server RSS growth per connection.\n\n| connections |", env)
	for _, s := range servers {
		fmt.Fprintf(&b, " %s bytes/conn |", s.Name)
	}
	b.WriteString(" evnats / nats-server |\n|---:|")
	for range servers {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	limit := fileLimit()
	for _, n := range counts {
		fmt.Fprintf(&b, "| %s |", commas(float64(n)))
		if uint64(n)+256 > limit {
			// Each side needs a descriptor per connection; say so rather than fail.
			msg := fmt.Sprintf("needs %d open files; this machine allows %d", n+256, limit)
			progress("%d connections skipped: %s", n, msg)
			for range servers {
				b.WriteString(" skipped |")
			}
			fmt.Fprintf(&b, " %s |\n", msg)
			continue
		}
		per := map[string]float64{}
		for _, s := range servers {
			v, err := idleConnCost(s, n)
			if err != nil {
				progress("%s with %d connections: %v", s.Name, n, err)
				b.WriteString(" failed |")
				continue
			}
			per[s.Name] = v
			progress("%s: %d idle connections, %.0f bytes each", s.Name, n, v)
			fmt.Fprintf(&b, " %s |", commas(v))
		}
		if per["evnats"] > 0 && per["nats-server"] > 0 {
			fmt.Fprintf(&b, " **%.2f** |\n", per["evnats"]/per["nats-server"])
		} else {
			b.WriteString(" n/a |\n")
		}
	}
	fmt.Println(b.String())
	writeFile(out, "connections.md", b.String())
}

// srcNet rotates the second octet of the source addresses between runs, so
// one run's TIME_WAIT sockets never block the next run's ports.
var srcNet byte

func idleConnCost(k serverKind, n int) (float64, error) {
	srcNet++
	p, err := startServer(k)
	if err != nil {
		return 0, err
	}
	defer p.stop()
	time.Sleep(200 * time.Millisecond)
	before := rssBytes(p.pid())
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	addr := fmt.Sprintf("127.0.0.1:%d", p.port)
	for i := 0; i < n; i++ {
		d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, srcNet, 0, byte(2+i/20000))}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return 0, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
			return 0, err
		}
		if i%1000 == 999 {
			progress("  %s: %d connections", k.Name, i+1)
		}
	}
	// Every connection has been served once: read INFO and PONG on each.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		r := bufio.NewReaderSize(c, 4096)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return 0, fmt.Errorf("connection %d: %w", i, err)
			}
			if strings.HasPrefix(line, "PONG") {
				break
			}
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := rssBytes(p.pid())
	return float64(after-before) / float64(n), nil
}

func fileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	return l.Cur
}

// raiseFileLimit lifts the open-file limit for this process and the servers
// it starts, which need one descriptor per connection.
func raiseFileLimit() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	l.Cur = l.Max
	if l.Cur < 200_000 {
		l.Cur, l.Max = 200_000, max(l.Max, 200_000)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

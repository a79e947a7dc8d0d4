package main

// Concurrency: serve runs the server from main's goroutine and handles
// every signal there, one at a time, so a reload never overlaps another
// or a shutdown. sendSignal runs in a short-lived evnats process that
// signals the serving one.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/evnats/evnats/loop"
)

// serve starts the server and handles signals as nats-server does:
// SIGINT and SIGTERM stop it (connections closed, JetStream flushed),
// SIGHUP reloads the configuration (load reads the file again), SIGUSR1
// reopens the log file, SIGUSR2 enters lame duck mode.
func serve(o loop.Options, load func() (loop.Options, error), lameDuck bool) error {
	// Trap signals before the pid file says where to send them, so that an
	// early SIGHUP cannot kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	s, err := loop.New(o)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	if o.PidFile != "" {
		if err := os.WriteFile(o.PidFile, []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
			s.Shutdown()
			return fmt.Errorf("pid file: %w", err)
		}
		defer os.Remove(o.PidFile)
	}
	if lameDuck {
		go s.LameDuck()
	}
	for {
		select {
		case sig := <-sigs:
			s.Noticef("Trapped %q signal", sig)
			switch sig {
			case syscall.SIGUSR2:
				go s.LameDuck()
			case syscall.SIGUSR1:
				s.ReopenLogFile()
			case syscall.SIGHUP:
				next, err := load()
				if err == nil {
					err = s.Reload(next)
				}
				if err != nil {
					s.Errorf("Failed to reload server configuration: %v", err)
				}
			default:
				s.Shutdown()
				return nil
			}
		case <-s.Done():
			return nil
		}
	}
}

// signalCommands are --signal's commands, as nats-server's.
var signalCommands = map[string]syscall.Signal{
	"stop":   syscall.SIGKILL,
	"quit":   syscall.SIGINT,
	"term":   syscall.SIGTERM,
	"reopen": syscall.SIGUSR1,
	"reload": syscall.SIGHUP,
	"ldm":    syscall.SIGUSR2,
}

// sendSignal handles --signal cmd[=pid]: pid is a process id or a pid
// file; without it, the pid file of -P or the configuration, else the one
// running process named as this one.
func sendSignal(arg, pidFile string) error {
	cmd, pidArg, hasPid := strings.Cut(arg, "=")
	signum, ok := signalCommands[cmd]
	if !ok {
		return fmt.Errorf("unknown signal %q (want stop, quit, term, reopen, reload or ldm)", cmd)
	}
	var pidStr string
	switch {
	case hasPid:
		pidStr = pidArg
		if b, err := os.ReadFile(pidArg); err == nil {
			pidStr = string(b)
		}
	case pidFile != "":
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return fmt.Errorf("pid file: %w", err)
		}
		pidStr = string(b)
	default:
		p, err := findProcess()
		if err != nil {
			return err
		}
		pidStr = p
	}
	pid, err := strconv.Atoi(strings.TrimSpace(pidStr))
	if err != nil || pid <= 0 {
		return fmt.Errorf("invalid pid: %q", strings.TrimSpace(pidStr))
	}
	if err := syscall.Kill(pid, signum); err != nil {
		return fmt.Errorf("signal %q %d: %w", cmd, pid, err)
	}
	return nil
}

// findProcess asks pgrep for the one other process named as this one.
func findProcess() (string, error) {
	name := filepath.Base(os.Args[0])
	out, err := exec.Command("pgrep", "-x", name).Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return "", errors.New("unable to resolve pid, try providing one")
	}
	var pids []string
	for _, p := range strings.Fields(string(out)) {
		if p != strconv.Itoa(os.Getpid()) {
			pids = append(pids, p)
		}
	}
	switch len(pids) {
	case 0:
		return "", fmt.Errorf("no %s processes running", name)
	case 1:
		return pids[0], nil
	}
	return "", fmt.Errorf("multiple %s processes running (%s): name one with --signal %s=PID", name, strings.Join(pids, ", "), "cmd")
}

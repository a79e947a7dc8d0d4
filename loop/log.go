package loop

// Concurrency: a Logger is safe for concurrent use. mu serialises lines,
// rotation, reopening and reconfiguring, so a line never lands half in one
// file and half in the next; debug and trace are atomics that the
// per-message paths read without the lock.

import (
	"fmt"
	"io"
	"log/syslog"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// logConfig is where and how the server logs; built from Options.
type logConfig struct {
	file      string // log to this file (Options.LogFile)
	sizeLimit int64  // rotate the file past this many bytes (0: never)
	maxFiles  int    // keep at most this many files, the live one included (0: all)
	noTime    bool   // no timestamps (-T=false)
	utc       bool   // timestamps in UTC
	syslog    bool   // the local syslog
	remote    string // a remote syslog, "udp://host:514" (tcp:// and unix:// too)
	writer    io.Writer
}

func logConfigOf(o *Options) logConfig {
	return logConfig{
		file: o.LogFile, sizeLimit: o.LogSizeLimit, maxFiles: o.LogMaxFiles,
		noTime: o.NoLogTime, utc: o.LogTimeUTC, syslog: o.Syslog, remote: o.RemoteSyslog,
		writer: o.LogWriter,
	}
}

// Logger writes the server's log lines in nats-server's format:
// "[pid] 2006/01/02 15:04:05.000000 [INF] text" on standard error or in a
// file, or the text alone to syslog, which stamps its own.
type Logger struct {
	debug, trace atomic.Bool
	pid          string // "[pid] ", the prefix of every line

	mu struct {
		sync.Mutex
		cfg  logConfig
		w    io.Writer      // standard error, Options.LogWriter or the file
		file *os.File       // the log file; nil when not logging to one
		size int64          // bytes in file
		sys  *syslog.Writer // nil unless logging to syslog
		line []byte         // formatting space, reused
	}
}

func newLogger(o *Options) (*Logger, error) {
	l := &Logger{pid: "[" + strconv.Itoa(os.Getpid()) + "] "}
	if err := l.configure(logConfigOf(o), o.Debug, o.Trace); err != nil {
		return nil, err
	}
	return l, nil
}

// configure opens the sink cfg names and, once it is open, closes the one
// in use; on error the old sink stays.
func (l *Logger) configure(cfg logConfig, debug, trace bool) error {
	var (
		file *os.File
		size int64
		sys  *syslog.Writer
		w    io.Writer
		err  error
	)
	switch {
	case cfg.file != "":
		if file, size, err = openLogFile(cfg.file); err != nil {
			return err
		}
		w = file
	case cfg.remote != "":
		if sys, err = dialSyslog(cfg.remote); err != nil {
			return err
		}
	case cfg.syslog:
		if sys, err = syslog.New(syslog.LOG_DAEMON|syslog.LOG_NOTICE, "evnats"); err != nil {
			return fmt.Errorf("syslog: %w", err)
		}
	case cfg.writer != nil:
		w = cfg.writer
	default:
		w = os.Stderr
	}
	l.mu.Lock()
	oldFile, oldSys := l.mu.file, l.mu.sys
	l.mu.cfg, l.mu.w, l.mu.file, l.mu.size, l.mu.sys = cfg, w, file, size, sys
	l.mu.Unlock()
	l.debug.Store(debug)
	l.trace.Store(trace)
	if oldFile != nil && oldFile != file {
		_ = oldFile.Close()
	}
	if oldSys != nil {
		_ = oldSys.Close()
	}
	return nil
}

func openLogFile(name string) (*os.File, int64, error) {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("log file: %w", err)
	}
	return f, st.Size(), nil
}

// dialSyslog connects to a remote syslog named as nats-server's
// remote_syslog: udp://host:port, tcp://host:port or unix:///path.
func dialSyslog(addr string) (*syslog.Writer, error) {
	u, err := url.Parse(addr)
	if err != nil || u.Scheme == "" {
		return nil, fmt.Errorf("remote_syslog %q: want udp://host:port, tcp://host:port or unix:///path", addr)
	}
	host := u.Host
	if u.Scheme == "unix" || u.Scheme == "unixgram" {
		host = u.Path
	}
	w, err := syslog.Dial(u.Scheme, host, syslog.LOG_DAEMON|syslog.LOG_NOTICE, "evnats")
	if err != nil {
		return nil, fmt.Errorf("remote_syslog: %w", err)
	}
	return w, nil
}

// Reopen closes the log file and opens it again by name (SIGUSR1), for a
// log rotated by an outside tool. It reports false when not logging to a file.
func (l *Logger) Reopen() (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.mu.file == nil {
		return false, nil
	}
	f, size, err := openLogFile(l.mu.cfg.file)
	if err != nil {
		return true, err
	}
	_ = l.mu.file.Close()
	l.mu.file, l.mu.w, l.mu.size = f, f, size
	return true, nil
}

func (l *Logger) debugging() bool { return l.debug.Load() }
func (l *Logger) tracing() bool   { return l.trace.Load() }

// Log levels, labelled as nats-server labels them.
const (
	lvlInfo  = "[INF] "
	lvlWarn  = "[WRN] "
	lvlError = "[ERR] "
	lvlDebug = "[DBG] "
	lvlTrace = "[TRC] "
)

// Noticef, Warnf, Errorf, Debugf and Tracef log one line at their level;
// Debugf and Tracef only when -D or -V is on.
func (l *Logger) Noticef(format string, args ...any) { l.logf(lvlInfo, format, args...) }
func (l *Logger) Warnf(format string, args ...any)   { l.logf(lvlWarn, format, args...) }
func (l *Logger) Errorf(format string, args ...any)  { l.logf(lvlError, format, args...) }
func (l *Logger) Debugf(format string, args ...any) {
	if l.debugging() {
		l.logf(lvlDebug, format, args...)
	}
}
func (l *Logger) Tracef(format string, args ...any) {
	if l.tracing() {
		l.logf(lvlTrace, format, args...)
	}
}

func (l *Logger) logf(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.mu.sys; s != nil {
		msg := fmt.Sprintf(format, args...)
		switch level {
		case lvlError:
			_ = s.Err(msg)
		case lvlWarn:
			_ = s.Warning(msg)
		case lvlDebug, lvlTrace:
			_ = s.Debug(msg)
		default:
			_ = s.Notice(msg)
		}
		return
	}
	l.writeLineLocked(level, format, args...)
	if lim := l.mu.cfg.sizeLimit; l.mu.file != nil && lim > 0 && l.mu.size > lim {
		l.rotateLocked()
	}
}

// writeLineLocked formats and writes one line; l.mu is held.
func (l *Logger) writeLineLocked(level, format string, args ...any) {
	b := append(l.mu.line[:0], l.pid...)
	if !l.mu.cfg.noTime {
		now := time.Now()
		if l.mu.cfg.utc {
			now = now.UTC()
		}
		b = now.AppendFormat(b, "2006/01/02 15:04:05.000000 ")
	}
	b = append(b, level...)
	b = fmt.Appendf(b, format, args...)
	b = append(b, '\n')
	n, _ := l.mu.w.Write(b)
	l.mu.size += int64(n)
	if cap(b) <= 4096 {
		l.mu.line = b
	}
}

// rotateLocked renames the full log file to name.YYYY.MM.DD.HH.MM.SS.NNNNNNNNN
// (nats-server's backup name), starts a new one and removes the oldest
// backups past maxFiles. Failing to rename or reopen keeps logging to the
// file in hand rather than losing lines.
func (l *Logger) rotateLocked() {
	name := l.mu.cfg.file
	now := time.Now()
	bak := fmt.Sprintf("%s.%s.%09d", name, now.Format("2006.01.02.15.04.05"), now.Nanosecond())
	if err := os.Rename(name, bak); err != nil {
		l.mu.size = 0 // try again after another sizeLimit
		l.writeLineLocked(lvlError, "log rotation: %v", err)
		return
	}
	f, size, err := openLogFile(name)
	if err != nil {
		l.mu.size = 0
		l.writeLineLocked(lvlError, "log rotation: %v; still writing to %s", err, bak)
		return
	}
	_ = l.mu.file.Close()
	l.mu.file, l.mu.w, l.mu.size = f, f, size
	l.writeLineLocked(lvlInfo, "Rotated log, backup saved as %q", bak)
	if l.mu.cfg.maxFiles > 0 {
		purgeLogBackups(name, l.mu.cfg.maxFiles-1)
	}
}

// purgeLogBackups removes all but the newest keep backups of the log
// file name; their timestamped names sort oldest first.
func purgeLogBackups(name string, keep int) {
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var baks []string
	for _, e := range entries {
		if rest, ok := strings.CutPrefix(e.Name(), base+"."); ok && isBackupStamp(rest) {
			baks = append(baks, e.Name())
		}
	}
	sort.Strings(baks)
	for len(baks) > keep {
		_ = os.Remove(filepath.Join(dir, baks[0]))
		baks = baks[1:]
	}
}

// isBackupStamp reports whether s is a rotation stamp
// "YYYY.MM.DD.HH.MM.SS.NNNNNNNNN", so that other files that share the log
// file's prefix are never removed.
func isBackupStamp(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 7 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 64); err != nil {
			return false
		}
	}
	return true
}

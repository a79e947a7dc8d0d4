package loop

// Concurrency: HTTP handlers run on net/http goroutines and read only
// immutable options, atomics (counters, stat shards) and Sublist.Count.

import (
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"time"
)

// startMonitor serves the monitoring endpoints nats-server users expect.
func (s *Server) startMonitor() error {
	port := s.opts.HTTPPort
	if port < 0 {
		port = 0
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(s.opts.Host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/varz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Varz()) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte("evnats monitoring: /healthz /varz\n"))
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	s.httpAddr = ln.Addr()
	go func() { _ = s.http.Serve(ln) }()
	return nil
}

// Varz is the /varz document; field names as nats-server names them.
type Varz struct {
	ID               string    `json:"server_id"`
	Name             string    `json:"server_name"`
	Version          string    `json:"version"`
	Proto            int       `json:"proto"`
	GoVersion        string    `json:"go"`
	Host             string    `json:"host"`
	Port             int       `json:"port"`
	AuthRequired     bool      `json:"auth_required,omitempty"`
	MaxConn          int       `json:"max_connections"`
	MaxSubs          int       `json:"max_subscriptions,omitempty"`
	PingInterval     int64     `json:"ping_interval"`
	MaxPingsOut      int       `json:"ping_max"`
	HTTPPort         int       `json:"http_port"`
	AuthTimeout      float64   `json:"auth_timeout"`
	TLSRequired      bool      `json:"tls_required,omitempty"`
	TLSVerify        bool      `json:"tls_verify,omitempty"`
	TLSTimeout       float64   `json:"tls_timeout"`
	MaxControlLine   int       `json:"max_control_line"`
	MaxPayload       int       `json:"max_payload"`
	MaxPending       int       `json:"max_pending"`
	WriteDeadline    int64     `json:"write_deadline"`
	Start            time.Time `json:"start"`
	Now              time.Time `json:"now"`
	Uptime           string    `json:"uptime"`
	Mem              int64     `json:"mem"`
	Cores            int       `json:"cores"`
	MaxProcs         int       `json:"gomaxprocs"`
	Connections      int       `json:"connections"`
	TotalConnections uint64    `json:"total_connections"`
	InMsgs           int64     `json:"in_msgs"`
	OutMsgs          int64     `json:"out_msgs"`
	InBytes          int64     `json:"in_bytes"`
	OutBytes         int64     `json:"out_bytes"`
	SlowConsumers    uint64    `json:"slow_consumers"`
	StaleConnections uint64    `json:"stale_connections"`
	Subscriptions    uint32    `json:"subscriptions"`
	IO               string    `json:"evnats_io"`
	Loops            int       `json:"evnats_loops"`
}

// Varz returns a snapshot of server state and counters.
func (s *Server) Varz() *Varz {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	now := time.Now()
	v := &Varz{
		ID: s.id, Name: s.opts.ServerName, Version: Version, Proto: 1, GoVersion: runtime.Version(),
		Host: s.opts.Host, Port: s.infoBase.Port, AuthRequired: s.authCfg.required,
		MaxConn: s.opts.MaxConnections, MaxSubs: s.opts.MaxSubscriptions,
		PingInterval: int64(s.opts.PingInterval), MaxPingsOut: s.opts.MaxPingsOut,
		AuthTimeout: s.opts.AuthTimeout.Seconds(), MaxControlLine: s.opts.MaxControlLine,
		MaxPayload: s.opts.MaxPayload, MaxPending: s.opts.MaxPending, WriteDeadline: int64(s.opts.WriteDeadline),
		Start: s.start, Now: now, Uptime: now.Sub(s.start).Round(time.Second).String(),
		Mem: int64(ms.Sys), Cores: runtime.NumCPU(), MaxProcs: runtime.GOMAXPROCS(0),
		Connections: s.NumClients(), TotalConnections: s.totalConns.Load(),
		SlowConsumers: s.slowCons.Load(), StaleConnections: s.staleConns.Load(),
		Subscriptions: uint32(s.NumSubscriptions()), IO: s.opts.IO, Loops: s.opts.Loops,
	}
	if a, ok := s.httpAddr.(*net.TCPAddr); ok {
		v.HTTPPort = a.Port
	}
	if s.tls != nil {
		v.TLSRequired, v.TLSVerify = true, s.infoBase.TLSVerify
		v.TLSTimeout = s.tls.timeout.Seconds()
	}
	for i := range s.stats {
		st := &s.stats[i]
		v.InMsgs += st.inMsgs.Load()
		v.InBytes += st.inBytes.Load()
		v.OutMsgs += st.outMsgs.Load()
		v.OutBytes += st.outBytes.Load()
	}
	return v
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

package loop

// Concurrency: logStartup runs once, at the end of Start, on its caller's
// goroutine, and reads only what Start set up.

import (
	"fmt"
	"os"
	"runtime"
)

// logStartup says where everything is, as nats-server's start-up lines
// do, so that an operator reading the log finds every port and path.
func (s *Server) logStartup() {
	o := &s.opts
	s.Noticef("Starting evnats")
	s.Noticef("  Version:  %s (nats protocol; %s)", Version, runtime.Version())
	s.Noticef("  Name:     %s", o.ServerName)
	s.Noticef("  ID:       %s", s.id)
	s.Noticef("  PID:      %d", os.Getpid())
	if o.ConfigFile != "" {
		s.Noticef("Using configuration file: %s", o.ConfigFile)
	}
	if o.PidFile != "" {
		s.Noticef("PID file: %s", o.PidFile)
	}
	if o.LogFile != "" {
		rot := ""
		if o.LogSizeLimit > 0 {
			rot = fmt.Sprintf(", rotated past %d bytes", o.LogSizeLimit)
		}
		if o.LogMaxFiles > 0 {
			rot += fmt.Sprintf(", keeping %d files", o.LogMaxFiles)
		}
		s.Noticef("Log file: %s%s", o.LogFile, rot)
	}
	if o.IO == IOGnet {
		s.Noticef("Transport: gnet event loops, %d loops", o.Loops)
	} else {
		s.Noticef("Transport: one goroutine per connection")
	}
	if s.js != nil {
		s.Noticef("JetStream store directory: %s", o.StoreDir)
	}
	if a := s.MonitorAddr(); a != nil {
		s.Noticef("Starting http monitor on %s", a)
	}
	if a := s.MonitorTLSAddr(); a != nil {
		s.Noticef("Starting https monitor on %s", a)
	}
	if a := s.MQTTAddr(); a != nil {
		s.Noticef("Listening for MQTT clients on %s%s", scheme(o.MQTTTLS != nil, "mqtt", "tls"), a)
	}
	if a := s.WebsocketAddr(); a != nil {
		s.Noticef("Listening for websocket clients on %s%s", scheme(o.Websocket.TLS != nil, "ws", "wss"), a)
	}
	s.Noticef("Listening for client connections on %s%s", scheme(s.tls != nil, "nats", "tls"), s.Addr())
	s.Noticef("Server is ready")
}

// scheme is "plain://" or, with TLS, "secure://".
func scheme(tls bool, plain, secure string) string {
	if tls {
		return secure + "://"
	}
	return plain + "://"
}

package loop

import "github.com/evnats/evnats/jetstream"

// jsHost lets the JetStream manager subscribe and publish inside the server.
type jsHost struct{ s *Server }

func (h jsHost) Subscribe(subject string, fn func(subject, reply string, hdr, data []byte)) func() {
	return h.s.SubscribeInternal(subject, func(subj, reply []byte, hdrLen int, msg []byte) {
		var hdr []byte
		data := msg
		if hdrLen >= 0 {
			hdr, data = msg[:hdrLen], msg[hdrLen:]
		}
		fn(string(subj), string(reply), hdr, data)
	})
}

func (h jsHost) Publish(subject, reply string, hdr, data []byte) {
	h.s.PublishInternal(subject, reply, hdr, data)
}

func (h jsHost) Deliver(to, subject, reply string, hdr, data []byte) {
	h.s.deliverInternal(to, subject, reply, hdr, data)
}

// startJetStream starts the manager when JetStream is enabled.
func (s *Server) startJetStream() error {
	if !s.opts.JetStream {
		return nil
	}
	m, err := jetstream.Start(jetstream.Config{
		StoreDir: s.opts.StoreDir, Sync: s.opts.JetStreamSync,
		MaxMemory: s.opts.JetStreamMaxMemory, MaxStore: s.opts.JetStreamMaxStore,
		FS: s.opts.JetStreamFS,
	}, jsHost{s})
	if err != nil {
		return err
	}
	s.js = m
	s.Noticef("JetStream enabled, store directory %s", s.opts.StoreDir)
	return nil
}

package loop

// Concurrency: a Space is a handle on an account, which lives as long as
// the server (see account.go); its methods are safe from any goroutine.

// Space is an account's subject space as a plug-in (MQTT) sees it: where
// its connections' subscriptions go and where what it publishes on their
// behalf is routed. The zero Space is not valid; use Conn.Space or
// Server.Space.
type Space struct{ a *account }

// Space is the account the connection is bound to ($G until a login
// binds it elsewhere).
func (k *Conn) Space() Space { return Space{k.acc} }

// GlobalSpace is the global account $G.
func (s *Server) GlobalSpace() Space { return Space{s.gacc} }

// Space returns the account named name, as configured now, and whether
// there is one.
func (s *Server) Space(name string) (Space, bool) {
	if name == globalAccount {
		return Space{s.gacc}, true
	}
	sp := s.live.Load().auth.accounts[name]
	if sp == nil || sp.acc == nil {
		return Space{}, false
	}
	return Space{sp.acc}, true
}

// Name is the account's name.
func (sp Space) Name() string { return sp.a.name }

// Global reports whether sp is the global account $G.
func (sp Space) Global() bool { return sp.a.name == globalAccount }

// ReplaceSubs is Server.ReplaceSubs in the account's sublist.
func (sp Space) ReplaceSubs(old, new []*Sub) {
	sp.a.sl.Replace(routerSubs(old), routerSubs(new))
}

// PublishInternalIn is PublishInternal in account sp.
func (s *Server) PublishInternalIn(sp Space, subject, reply string, hdr, data []byte) {
	s.deliverMatchedTo(sp.a.sl.Match(subject), subject, subject, reply, hdr, data)
}

// PublishToQueueIn is PublishToQueue in account sp.
func (s *Server) PublishToQueueIn(sp Space, subject, queue string, hdr, data []byte) bool {
	r := sp.a.sl.Match(subject)
	for _, q := range r.Queues {
		if len(q) > 0 && q[0].Queue == queue {
			s.deliverMatched(&matchResult{Queues: [][]*routerSub{q}}, subject, "", hdr, data)
			return true
		}
	}
	return false
}

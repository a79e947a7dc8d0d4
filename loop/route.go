package loop

import "github.com/evnats/evnats/router"

// route delivers one message published by c on loop lp to the matched
// subscriptions: in place for this loop's subscribers, through one batch per
// other loop for the rest. Queue groups get one member each, chosen at random among those
// that do not deny the subject.
func (lp *evLoop) route(c *client, r *router.Result, subject, reply []byte, hdrLen int, msg []byte) {
	for _, sp := range r.Spans {
		subs := r.Plain[sp.Start:sp.End]
		if sp.Loop == internalLoop {
			deliverInternal(subs, subject, reply, hdrLen, msg)
			continue
		}
		if sp.Loop != lp.idx {
			lp.forward(sp.Loop, subs, subject, reply, hdrLen, msg)
			if c.fc.wait == nil {
				lp.holdForRemote(c, sp.Loop, subs)
			}
			continue
		}
		for _, rs := range subs {
			s := rs.Owner.(*subscription)
			if s.c == c && !c.echo {
				continue
			}
			s.c.deliver(s, subject, reply, hdrLen, msg)
			c.holdFor(&s.c.fc.gate)
		}
	}
	for _, q := range r.Queues {
		i := pickQueueMember(q, lp.randn(len(q)), subject)
		if i < 0 {
			continue
		}
		rs := q[i]
		if rs.Loop == internalLoop {
			deliverInternal(q[i:i+1], subject, reply, hdrLen, msg)
			continue
		}
		if rs.Loop != lp.idx {
			lp.forward(rs.Loop, q[i:i+1], subject, reply, hdrLen, msg)
			if c.fc.wait == nil {
				lp.holdForRemote(c, rs.Loop, q[i:i+1])
			}
			continue
		}
		if s := rs.Owner.(*subscription); s.c != c || c.echo {
			s.c.deliver(s, subject, reply, hdrLen, msg)
			c.holdFor(&s.c.fc.gate)
		}
	}
}

// holdForRemote makes publisher c wait if loop dst's inbox, or one of the
// subscribers there that a message was just forwarded to, is over its
// high-water mark.
func (lp *evLoop) holdForRemote(c *client, dst int, subs []*router.Subscription) {
	c.holdFor(&lp.tr.loops[dst].inbox.gate)
	for _, rs := range subs {
		if c.fc.wait != nil {
			return
		}
		c.holdFor(&rs.Owner.(*subscription).c.fc.gate)
	}
}

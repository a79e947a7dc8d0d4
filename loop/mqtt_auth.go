package loop

// Concurrency: runs in the MQTT connection's reading context; on gnet a
// bcrypt check runs on a verifySlow goroutine that writes only its own
// result, handed back to the loop through c.t.run.

import (
	"bytes"

	"github.com/evnats/evnats/codec"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// mqttAuthResult is the outcome of a CONNECT's bcrypt check, made off the
// loop, that a re-run of MQTTConnect picks up.
type mqttAuthResult struct {
	u  *userEntry
	ok bool
}

// authenticate checks an MQTT CONNECT's credentials and installs the user on
// success. A bcrypt check on an event loop is made elsewhere (see
// verifySlow): authenticate then returns codec.ErrSuspend, and MQTTConnect
// runs again on the loop with the result, before the packets the client
// sent after CONNECT are parsed.
func (m *mqttConn) authenticate(cn *mcodec.Connect, o *connectOpts) (bool, error) {
	c := m.c
	a := c.srv.authCfg
	if r := m.authResult; r != nil {
		m.authResult = nil
		if r.ok {
			c.setUser(o.User, r.u)
		}
		return r.ok, nil
	}
	if !a.isSlow(o) {
		return a.authenticate(c, o), nil
	}
	if c.lp == nil { // the goroutine transport blocks its reader, within the bound
		var u *userEntry
		ok, expired := c.srv.slowAuth.check(c.authDeadline(), func() (ok bool) { u, ok = a.verify(o); return })
		if expired { // as the auth timeout closes: no CONNACK
			c.closeWithErr("")
			return false, errClose{}
		}
		if ok {
			c.setUser(o.User, u)
		}
		return ok, nil
	}
	saved := detachConnect(cn) // the parser's copy points into its read buffer
	opts := *o
	r := &mqttAuthResult{}
	c.srv.verifySlow(c.authDeadline(), func() bool { r.u, r.ok = a.verify(&opts); return r.ok }, func(bool) {
		c.t.run(func() {
			m.authResult = r
			err := m.MQTTConnect(saved)
			if err == nil {
				err = m.parser.Resume()
			}
			m.parsed(err)
		})
	})
	return false, codec.ErrSuspend
}

// detachConnect copies a CONNECT out of the parser's buffer.
func detachConnect(cn *mcodec.Connect) *mcodec.Connect {
	d := *cn
	for _, f := range []*[]byte{&d.ClientID, &d.WillTopic, &d.WillMessage, &d.Username, &d.Password} {
		*f = bytes.Clone(*f)
	}
	return &d
}

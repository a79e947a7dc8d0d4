package mqtt

// Concurrency: runs in the MQTT connection's reading context; on gnet a
// bcrypt check runs off the loop (loop.Conn.Authenticate) and its answer
// comes back in the connection's context, where MQTTConnect runs again.

import (
	"bytes"

	"github.com/evnats/evnats/codec"
	"github.com/evnats/evnats/loop"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// authenticate checks an MQTT CONNECT's credentials the way a NATS CONNECT's
// are checked (loop.Conn.Authenticate, which installs the user on success;
// MQTT carries a token in the password field). A bcrypt check on an event
// loop is made elsewhere: authenticate then returns codec.ErrSuspend, and
// MQTTConnect runs again on the loop with the result, before the packets
// the client sent after CONNECT are parsed.
func (m *conn) authenticate(cn *mcodec.Connect) (bool, error) {
	if r := m.authResult; r != nil {
		m.authResult = nil
		return *r == loop.AuthOK, nil
	}
	var saved *mcodec.Connect // set below, before the answer can come back on this loop
	res := m.c.Authenticate(string(cn.Username), string(cn.Password), func(r loop.AuthResult) {
		m.authResult = &r
		err := m.MQTTConnect(saved)
		if err == nil {
			err = m.parser.Resume()
		}
		m.parsed(err)
	})
	switch res {
	case loop.AuthPending:
		saved = detachConnect(cn) // the parser's copy points into its read buffer
		return false, codec.ErrSuspend
	case loop.AuthExpired: // as the auth timeout closes: no CONNACK
		m.c.Close()
		return false, errClose{}
	}
	return res == loop.AuthOK, nil
}

// detachConnect copies a CONNECT out of the parser's buffer.
func detachConnect(cn *mcodec.Connect) *mcodec.Connect {
	d := *cn
	for _, f := range []*[]byte{&d.ClientID, &d.WillTopic, &d.WillMessage, &d.Username, &d.Password} {
		*f = bytes.Clone(*f)
	}
	d.Props, d.WillProps = cn.Props.Clone(), cn.WillProps.Clone() // MQTT 5
	return &d
}

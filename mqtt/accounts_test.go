package mqtt_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/evnats/evnats/loop"
)

// TestMQTTAccountUsers: MQTT serves the global account only, so a user
// of another account is refused at CONNECT (not let into $G's topics),
// while a user outside any account logs in.
func TestMQTTAccountUsers(t *testing.T) {
	o := loop.Options{
		Users:    []*loop.User{{Username: "g", Password: "pw"}},
		Accounts: []*loop.Account{{Name: "A", Users: []*loop.User{{Username: "a", Password: "pw"}}}},
	}
	s := startMQTT(t, o)
	connectMQTT(t, s, "global", func(o *paho.ClientOptions) { o.SetUsername("g").SetPassword("pw") })
	c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURL(s)).SetClientID("inA").
		SetUsername("a").SetPassword("pw").SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(5 * time.Second))
	tok := c.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() == nil {
		c.Disconnect(0)
		t.Fatalf("account user admitted over MQTT: %v", tok.Error())
	}
}

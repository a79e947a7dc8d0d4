package looptest_test

import (
	"strings"
	"testing"

	"github.com/evnats/evnats/loop"
)

// TestMQTTNeedsPlugin: loop serves MQTT only through the mqtt package's
// plug-in; a program that does not import it and asks for an MQTT port
// fails to start and says why. (This test binary is one of the few that
// import loop without mqtt.)
func TestMQTTNeedsPlugin(t *testing.T) {
	s, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1, MQTTPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Shutdown()
		t.Fatal("started an MQTT listener without the MQTT plug-in")
	}
	if !strings.Contains(err.Error(), "github.com/evnats/evnats/mqtt") {
		t.Fatalf("error %q does not say what to import", err)
	}
}

// TestLeafNeedsPlugin: the same for leaf-node remotes and loop/leaf.
func TestLeafNeedsPlugin(t *testing.T) {
	s, err := loop.New(loop.Options{Host: "127.0.0.1", Port: -1,
		LeafRemotes: []loop.LeafRemote{{URLs: []string{"nats-leaf://127.0.0.1:7422"}}}})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Shutdown()
		t.Fatal("started leaf remotes without the leaf plug-in")
	}
	if !strings.Contains(err.Error(), "github.com/evnats/evnats/loop/leaf") {
		t.Fatalf("error %q does not say what to import", err)
	}
}

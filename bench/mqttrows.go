package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mcodec "github.com/evnats/evnats/mqtt/codec"
)

// mqttArgs returns the arguments that open an MQTT listener on port, with
// sessions stored under dir: a config file for nats-server (its MQTT needs
// JetStream and a server name), flags for evnats.
func mqttArgs(k serverKind, port int, dir string) ([]string, error) {
	if k.Name == "nats-server" {
		conf := filepath.Join(dir, "nats.conf")
		body := fmt.Sprintf("server_name: bench\njetstream { store_dir: %q }\nmqtt { port: %d }\n", filepath.Join(dir, "js"), port)
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			return nil, err
		}
		return []string{"-c", conf}, nil
	}
	return []string{"--mqtt_port", strconv.Itoa(port), "-js", "-sd", filepath.Join(dir, "js")}, nil
}

func dialMQTT(addr, id string, clean bool) (paho.Client, error) {
	o := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(clean).
		SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(10 * time.Second).
		SetKeepAlive(time.Minute).SetWriteTimeout(30 * time.Second)
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(15*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("mqtt connect %s: %v", id, tok.Error())
	}
	return c, nil
}

// runMQTT publishes n messages to one MQTT subscriber: from a paho client at
// QoS 0 or 1, or from a nats.go client (r.MQTT "nats"). Publishers stay at
// most lagMsgs ahead of the subscriber on every server alike.
func runMQTT(r row, tg target, w *window, n int) (sample, error) {
	if r.MQTT == "sessions" {
		return runMQTTSessions(tg, w, n)
	}
	const lagMsgs = 20_000
	qos := byte(0)
	if r.MQTT == "qos1" {
		qos = 1
	}
	var got atomic.Int64
	done := make(chan struct{})
	sub, err := dialMQTT(tg.MQTT, "bench-sub", true)
	if err != nil {
		return sample{}, err
	}
	defer sub.Disconnect(0)
	tok := sub.Subscribe("bench/mqtt", qos, func(paho.Client, paho.Message) {
		if got.Add(1) == int64(n) {
			close(done)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return sample{}, fmt.Errorf("subscribe: %v", tok.Error())
	}
	payload := make([]byte, r.Payload)
	throttle := func(i int) {
		for int64(i)-got.Load() > lagMsgs {
			time.Sleep(20 * time.Microsecond)
		}
	}
	if r.MQTT == "nats" {
		nc, err := dial(tg.URL)
		if err != nil {
			return sample{}, err
		}
		defer nc.Close()
		w.Start()
		for i := 0; i < n; i++ {
			if err := nc.Publish("bench.mqtt", payload); err != nil {
				return sample{}, err
			}
			if i%256 == 255 {
				throttle(i)
			}
		}
		if err := nc.Flush(); err != nil {
			return sample{}, err
		}
	} else {
		pub, err := dialMQTT(tg.MQTT, "bench-pub", true)
		if err != nil {
			return sample{}, err
		}
		defer pub.Disconnect(0)
		w.Start()
		var last paho.Token
		for i := 0; i < n; i++ {
			last = pub.Publish("bench/mqtt", qos, false, payload)
			if i%256 == 255 {
				throttle(i)
			}
		}
		if !last.WaitTimeout(time.Minute) || last.Error() != nil {
			return sample{}, fmt.Errorf("publish: %v", last.Error())
		}
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return sample{}, fmt.Errorf("subscriber got %d of %d", got.Load(), n)
	}
	w.Stop()
	return sample{Msgs: int64(n), Bytes: int64(n * r.Payload)}, nil
}

// runMQTTSessions sets up n persistent sessions (clean session off), each
// with one QoS 1 subscription, from 32 raw-socket clients at a time: CONNECT,
// SUBSCRIBE, wait for SUBACK, DISCONNECT. Msgs counts sessions.
func runMQTTSessions(tg target, w *window, n int) (sample, error) {
	const workers = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	deadline := time.Now().Add(5 * time.Minute)
	w.Start()
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= n {
					return
				}
				if err := setupSession(tg.MQTT, k, deadline); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	w.Stop()
	select {
	case err := <-errs:
		return sample{}, err
	default:
	}
	return sample{Msgs: int64(n)}, nil
}

func setupSession(addr string, k int, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	id := fmt.Sprintf("bench-session-%d", k)
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 60, byte(len(id) >> 8), byte(len(id))}, id...)
	pkt := append(mcodec.AppendRemainingLength([]byte{mcodec.CONNECT << 4}, len(body)), body...)
	filter := fmt.Sprintf("bench/sessions/%d/+", k)
	sb := append([]byte{0, 1, byte(len(filter) >> 8), byte(len(filter))}, filter...)
	sb = append(sb, 1)
	pkt = append(pkt, mcodec.AppendRemainingLength([]byte{mcodec.SUBSCRIBE<<4 | 2}, len(sb))...)
	pkt = append(pkt, sb...)
	if _, err := conn.Write(pkt); err != nil {
		return err
	}
	br := bufio.NewReader(conn)
	for want := []byte{mcodec.CONNACK, mcodec.SUBACK}; len(want) > 0; want = want[1:] {
		first, err := br.ReadByte()
		if err != nil {
			return fmt.Errorf("session %d: %w", k, err)
		}
		size, err := br.ReadByte()
		if err != nil {
			return err
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		if first>>4 != want[0] || (want[0] == mcodec.SUBACK && b[len(b)-1] != 1) || (want[0] == mcodec.CONNACK && b[1] != 0) {
			return fmt.Errorf("session %d: packet type %d % x", k, first>>4, b)
		}
	}
	_, err = conn.Write([]byte{mcodec.DISCONNECT << 4, 0})
	return err
}

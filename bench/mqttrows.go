package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
		// nats-server 2.15 caps a stream at 1,000 consumers by default and
		// each QoS 1 subscription is one; lift the cap as a user would.
		body := fmt.Sprintf("server_name: bench\njetstream { store_dir: %q, limits { default_max_consumers: -1 } }\nmqtt { port: %d }\n", filepath.Join(dir, "js"), port)
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
	switch r.MQTT {
	case "sessions":
		return runMQTTSessions(tg, w, n)
	case "fanout":
		return runMQTTFanout(r, tg, w, n)
	case "shared":
		return runMQTTShared(r, tg, w, n)
	case "v5qos0":
		return runMQTT5(r, tg, w, n, 0)
	case "v5qos1":
		return runMQTT5(r, tg, w, n, 1)
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
	return setupSessions(tg.MQTT, w, n, 1)
}

// refusedSubs counts subscriptions a server refused (SUBACK 0x80) or granted
// below QoS 1 during session setup.
var refusedSubs atomic.Int64

// setupSessions sets up n persistent sessions with subs QoS 1 filters each;
// a refused subscription is an error.
func setupSessions(addr string, w *window, n, subs int) (sample, error) {
	refusedSubs.Store(0)
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
				if err := setupSession(addr, k, subs, deadline); err != nil {
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
	if r := refusedSubs.Load(); r > 0 {
		return sample{}, fmt.Errorf("%s of %s QoS 1 subscriptions refused", commas(float64(r)), commas(float64(n*subs)))
	}
	return sample{Msgs: int64(n)}, nil
}

func setupSession(addr string, k, subs int, deadline time.Time) error {
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	id := fmt.Sprintf("bench-session-%d", k)
	body := append([]byte{0, 4, 'M', 'Q', 'T', 'T', 4, 0, 0, 60, byte(len(id) >> 8), byte(len(id))}, id...)
	pkt := append(mcodec.AppendRemainingLength([]byte{mcodec.CONNECT << 4}, len(body)), body...)
	var sb []byte
	sb = append(sb, 0, 1)
	for i := 0; i < subs; i++ {
		filter := fmt.Sprintf("bench/sessions/%d/%d/+", k, i)
		sb = append(sb, byte(len(filter)>>8), byte(len(filter)))
		sb = append(sb, filter...)
		sb = append(sb, 1)
	}
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
		size, mult := 0, 1
		for {
			c, err := br.ReadByte()
			if err != nil {
				return err
			}
			size += int(c&0x7f) * mult
			mult *= 128
			if c&0x80 == 0 {
				break
			}
		}
		b := make([]byte, size)
		if _, err := io.ReadFull(br, b); err != nil {
			return err
		}
		if first>>4 != want[0] || len(b) < 2 || (want[0] == mcodec.CONNACK && b[1] != 0) {
			return fmt.Errorf("session %d: packet type %d % x", k, first>>4, b)
		}
		if want[0] == mcodec.SUBACK {
			for _, code := range b[2:] {
				if code != 1 {
					refusedSubs.Add(1)
				}
			}
		}
	}
	_, err = conn.Write([]byte{mcodec.DISCONNECT << 4, 0})
	return err
}

// runSessionScale sets up n persistent sessions with subs QoS 1
// subscriptions each on every server and reports the setup time and the
// server's resident memory per session afterwards (the sessions stay, their
// clients gone).
func runSessionScale(servers []serverKind, n, subs int, out, env string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Persistent MQTT sessions on %s: %s sessions x %d QoS 1 subscriptions (%s subscriptions), set up by 32 clients at a time.\n\n",
		env, commas(float64(n)), subs, commas(float64(n*subs)))
	b.WriteString("| server | setup time | sessions/s | RSS growth per session | result |\n|---|---:|---:|---:|---|\n")
	for _, k := range servers {
		line, err := sessionScale(k, n, subs)
		if err != nil {
			progress("%s: %v", k.Name, err)
			fmt.Fprintf(&b, "| %s | | | | failed: %v |\n", k.Name, err)
			continue
		}
		progress("%s: %s", k.Name, line)
		fmt.Fprintf(&b, "| %s | %s |\n", k.Name, line)
	}
	fmt.Println(b.String())
	writeFile(out, "mqtt-sessions.md", b.String())
}

func sessionScale(k serverKind, n, subs int) (string, error) {
	dir, err := os.MkdirTemp("", "evbench-mqtt-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return "", err
	}
	var p *proc
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if k.MQTTOnly != "" {
		if p, addr, err = startMQTTBroker(k, dir); err != nil {
			return "", err
		}
	} else {
		args, err := mqttArgs(k, port, dir)
		if err != nil {
			return "", err
		}
		k.Args = append(append([]string(nil), k.Args...), args...)
		if p, err = startServer(k); err != nil {
			return "", err
		}
	}
	defer p.stop()
	if err := waitListening(addr); err != nil {
		return "", err
	}
	time.Sleep(200 * time.Millisecond)
	before := rssBytes(p.pid())
	w := &window{pid: p.pid()}
	if _, err := setupSessions(addr, w, n, subs); err != nil {
		return "", err
	}
	d := w.end.Sub(w.start)
	time.Sleep(500 * time.Millisecond)
	after := rssBytes(p.pid())
	return fmt.Sprintf("%.1f s | %s | %s bytes | ok", d.Seconds(), commas(float64(n)/d.Seconds()), commas(float64(after-before)/float64(n))), nil
}

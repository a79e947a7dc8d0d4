package jetstream_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// requiredLevelScenario sends API requests and a pull request with
// Nats-Required-Api-Level values at, above and beside the server's level,
// and reports each answer's type and error, or the pull's status.
func requiredLevelScenario(t *testing.T, url string) []string {
	nc, _ := dial(t, url)
	var out []string
	send := func(subject, level, body string) {
		msg := nats.NewMsg(subject)
		if level != "" {
			msg.Header.Set("Nats-Required-Api-Level", level)
		}
		msg.Data = []byte(body)
		resp, err := nc.RequestMsg(msg, 5*time.Second)
		if err != nil {
			out = append(out, fmt.Sprintf("%s level %q: %v", subject, level, err))
			return
		}
		if status := resp.Header.Get("Status"); status != "" {
			out = append(out, fmt.Sprintf("%s level %q: status %s %s", subject, level, status, resp.Header.Get("Description")))
			return
		}
		var r struct {
			Type  string `json:"type"`
			Error *struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &r); err != nil {
			t.Fatalf("%s: %v: %s", subject, err, resp.Data)
		}
		line := fmt.Sprintf("%s level %q: %s", subject, level, r.Type)
		if r.Error != nil {
			line += fmt.Sprintf(" %d %d %s", r.Error.Code, r.Error.ErrCode, r.Error.Description)
		}
		out = append(out, line)
	}
	for _, level := range []string{"", "0", "2", "99", "x"} {
		send("$JS.API.INFO", level, "")
		send("$JS.API.STREAM.CREATE.L"+level, level, `{"name":"L`+level+`","subjects":["l`+level+`"],"storage":"memory"}`)
		send("$JS.API.STREAM.INFO.L", level, "")
		send("$JS.API.CONSUMER.CREATE.L.C", level, `{"stream_name":"L","config":{"name":"C","ack_policy":"explicit"}}`)
		send("$JS.API.CONSUMER.INFO.L.C", level, "")
		send("$JS.API.STREAM.NAMES", level, "")
	}
	send("$JS.API.CONSUMER.MSG.NEXT.L.C", "99", `{"batch":1,"no_wait":true}`)
	send("$JS.API.CONSUMER.MSG.NEXT.L.C", "2", `{"batch":1,"no_wait":true}`)
	return out
}

// TestRequiredAPILevelDifferential: a request whose
// Nats-Required-Api-Level is above the server's level (2 for evnats, more
// for nats-server) or not a number is refused with 10185, or a 412 status
// for a pull, as nats-server does.
func TestRequiredAPILevelDifferential(t *testing.T) {
	differential(t, requiredLevelScenario)
}

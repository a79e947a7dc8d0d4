package loop_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/evnats/evnats/loop"
	"github.com/evnats/evnats/loop/looptest"
)

// TestNatscliAccounts: natscli as the system user runs `server ping`,
// `server info` and `server list`; as a user of another account it is
// told to use a system account; `account info` and `stream add` work in an
// account with JetStream of its own, and two accounts each get ORDERS.
func TestNatscliAccounts(t *testing.T) {
	cli := natscli(t)
	conf := `
server_name: edge1
jetstream: enabled
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  APP { users = [ {user: app, password: app} ], jetstream: enabled }
  OPS { users = [ {user: ops, password: ops} ], jetstream: { max_streams: 5, max_mem: 1M, max_file: 10M } }
}
system_account: SYS
`
	looptest.Each(t, loop.Options{}, func(t *testing.T, o loop.Options) {
		s := startFromFile(t, o, conf).s
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		env := append(os.Environ(), "HOME="+t.TempDir(), "NATS_CONTEXT=")
		run := func(user string, args ...string) (string, error) {
			args = append([]string{"--server", s.ClientURL(), "--user", user, "--password", user, "--timeout", "5s"}, args...)
			cmd := exec.CommandContext(ctx, cli, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		for _, tc := range []struct {
			user string
			args []string
			want string
		}{
			{"sys", []string{"server", "ping", "1"}, "edge1"},
			{"sys", []string{"server", "info"}, "Server information for edge1"},
			{"sys", []string{"server", "list", "1"}, "edge1"},
			{"sys", []string{"server", "report", "connections"}, "SYS"},
			{"app", []string{"stream", "add", "ORDERS", "--subjects", "orders.>", "--defaults"}, "Stream ORDERS was created"},
			{"ops", []string{"stream", "add", "ORDERS", "--subjects", "orders.>", "--defaults"}, "Stream ORDERS was created"},
			{"ops", []string{"account", "info"}, "Streams: 1 of 5"},
			{"ops", []string{"account", "info"}, "Memory: 0 B of 977 KiB"},
			{"ops", []string{"account", "info"}, "Storage: 0 B of 9.5 MiB"},
			{"app", []string{"pub", "orders.1", "x"}, "Published"},
			{"app", []string{"account", "info"}, "Storage: 25 B"},
			{"sys", []string{"server", "report", "jetstream"}, "JetStream Summary"},
			{"sys", []string{"server", "report", "jetstream"}, "│ edge1  │         │ 2       │"},
			{"sys", []string{"server", "report", "connections", "--account", "SYS"}, "Top 1 Connections out of 1"},
		} {
			out, err := run(tc.user, tc.args...)
			if err != nil || !strings.Contains(out, tc.want) {
				t.Fatalf("%s: nats %s: %v\n%s", tc.user, strings.Join(tc.args, " "), err, out)
			}
		}
		for _, args := range [][]string{{"server", "ping", "1"}, {"server", "report", "jetstream"},
			{"server", "report", "connections"}} {
			out, err := run("app", args...)
			if err == nil || !strings.Contains(out, "system") {
				t.Fatalf("app user: nats %s answered:\n%s", strings.Join(args, " "), out)
			}
		}
	})
}

package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// stat is the median of one row on one server.
type stat struct {
	rate, mbs, cpu float64
	lat            latencies // medians over the runs of each percentile
	failed         int
	n              int
}

func summarize(ss []sample) stat {
	var rate, mbs, cpu, p50, p90, p99, p999 []float64
	st := stat{}
	for _, s := range ss {
		if s.Failure != "" {
			st.failed++
			continue
		}
		rate = append(rate, s.MsgsPerSec())
		mbs = append(mbs, s.MBPerSec())
		cpu = append(cpu, s.CPUPerMsg())
		p50 = append(p50, float64(s.Lat.P50))
		p90 = append(p90, float64(s.Lat.P90))
		p99 = append(p99, float64(s.Lat.P99))
		p999 = append(p999, float64(s.Lat.P999))
	}
	st.n = len(rate)
	st.rate, st.mbs, st.cpu = median(rate), median(mbs), median(cpu)
	st.lat = latencies{
		P50: time.Duration(median(p50)), P90: time.Duration(median(p90)),
		P99: time.Duration(median(p99)), P999: time.Duration(median(p999)),
	}
	return st
}

func renderMarkdown(all []serverKind, rs []row, res results, rounds int, env string) string {
	var servers []serverKind // the NATS servers; MQTT-only brokers get their own table
	for _, k := range all {
		if k.MQTTOnly == "" {
			servers = append(servers, k)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Medians of %d alternating rounds on %s, %s.\n", rounds, env, time.Now().UTC().Format("2006-01-02"))
	fmt.Fprintf(&b, "Command: `%s`.\n", commandLine())
	b.WriteString("msgs/s counts published messages (each reaches every subscriber); CPU is server CPU time per published message from /proc/PID/task/*/schedstat.\n\n")
	b.WriteString("| row |")
	for _, s := range servers {
		fmt.Fprintf(&b, " %s msgs/s | %s MB/s | %s CPU ns/msg |", s.Name, s.Name, s.Name)
	}
	b.WriteString(" evnats / nats-server | CPU evnats / nats-server | p50 / p99 (evnats; nats-server) |\n|---|")
	for range servers {
		b.WriteString("---:|---:|---:|")
	}
	b.WriteString("---:|---:|---|\n")
	for _, r := range rs {
		fmt.Fprintf(&b, "| %s |", r.Name)
		sts := map[string]stat{}
		for _, s := range servers {
			st := summarize(res[r.Name][s.Name])
			sts[s.Name] = st
			if st.n == 0 {
				b.WriteString(" failed | | |")
				continue
			}
			fmt.Fprintf(&b, " %s | %.1f | %.0f |", commas(st.rate), st.mbs, st.cpu)
		}
		ev, ns := sts["evnats"], sts["nats-server"]
		ratio, cpuRatio := "n/a", "n/a"
		if ev.n > 0 && ns.n > 0 {
			ratio = fmt.Sprintf("**%.2fx**", ev.rate/ns.rate)
			cpuRatio = fmt.Sprintf("%.2f", ev.cpu/ns.cpu)
		}
		lat := ""
		if r.ReqRep {
			lat = fmt.Sprintf("%s / %s; %s / %s", us(ev.lat.P50), us(ev.lat.P99), us(ns.lat.P50), us(ns.lat.P99))
		}
		fmt.Fprintf(&b, " %s | %s | %s |\n", ratio, cpuRatio, lat)
	}
	for _, name := range pendingRows {
		fmt.Fprintf(&b, "| %s |", name)
		for range servers {
			b.WriteString(" n/a | | |")
		}
		b.WriteString(" n/a | n/a | |\n")
	}
	for _, note := range reportNotes {
		fmt.Fprintf(&b, "\n%s\n", note)
	}
	if hasNatscli(rs) {
		b.WriteString("\nnatscli rows: msgs/s is what `nats bench` (natscli " + natscliVersion + ", one client) printed; CPU spans its whole process, connecting and finding the stream included.\n")
	}
	renderLatency(&b, servers, rs, res)
	renderMQTTBrokers(&b, all, rs, res)
	return b.String()
}

// renderMQTTBrokers compares the MQTT rows across every server that runs
// them, MQTT-only brokers included, against the best of the others.
func renderMQTTBrokers(b *strings.Builder, servers []serverKind, rs []row, res results) {
	var mrows []row
	for _, r := range rs {
		if r.Kind == "mqtt" {
			mrows = append(mrows, r)
		}
	}
	if len(mrows) == 0 {
		return
	}
	b.WriteString("\nMQTT rows against the brokers MQTT users pick (msgs/s; server CPU ns per published message):\n\n| row |")
	for _, k := range servers {
		fmt.Fprintf(b, " %s | %s CPU |", k.Name, k.Name)
	}
	b.WriteString(" evnats / best other | CPU evnats / leanest other |\n|---|")
	for range servers {
		b.WriteString("---:|---:|")
	}
	b.WriteString("---:|---:|\n")
	for _, r := range mrows {
		fmt.Fprintf(b, "| %s |", r.Name)
		var ev, best, lean stat
		bestName, leanName := "", ""
		for _, k := range servers {
			if !k.serves(r) {
				b.WriteString(" n/a | |")
				continue
			}
			st := summarize(res[r.Name][k.Name])
			if st.n == 0 {
				b.WriteString(" failed | |")
				continue
			}
			fmt.Fprintf(b, " %s | %.0f |", commas(st.rate), st.cpu)
			switch {
			case k.Name == "evnats":
				ev = st
			case !strings.HasPrefix(k.Name, "evnats"):
				if st.rate > best.rate {
					best, bestName = st, k.Name
				}
				if st.cpu > 0 && (lean.n == 0 || st.cpu < lean.cpu) {
					lean, leanName = st, k.Name
				}
			}
		}
		if ev.n > 0 && best.n > 0 {
			fmt.Fprintf(b, " **%.2fx** (%s) |", ev.rate/best.rate, bestName)
		} else {
			b.WriteString(" n/a |")
		}
		if ev.n > 0 && ev.cpu > 0 && lean.n > 0 {
			fmt.Fprintf(b, " %.2f (%s) |\n", ev.cpu/lean.cpu, leanName)
		} else {
			b.WriteString(" n/a |\n")
		}
	}
}

// renderLatency adds the request/reply latency histogram: each percentile
// of the round-trip time is the median of that percentile over the rounds.
func renderLatency(b *strings.Builder, servers []serverKind, rs []row, res results) {
	header := false
	for _, r := range rs {
		if !r.ReqRep {
			continue
		}
		if !header {
			header = true
			b.WriteString("\nRequest/reply round-trip latency (nats.go `Request`, each client waits for its reply; medians over the rounds of each percentile):\n\n")
			b.WriteString("| row | server | p50 | p90 | p99 | p99.9 | msgs/s |\n|---|---|---:|---:|---:|---:|---:|\n")
		}
		for _, s := range servers {
			st := summarize(res[r.Name][s.Name])
			if st.n == 0 {
				continue
			}
			fmt.Fprintf(b, "| %s latency | %s | %s | %s | %s | %s | %s |\n", r.Name, s.Name,
				us(st.lat.P50), us(st.lat.P90), us(st.lat.P99), us(st.lat.P999), commas(st.rate))
		}
	}
}

func writeResults(dir, md string, servers []serverKind, rs []row, res results, env string) {
	writeFile(dir, "results.md", md)
	var csv strings.Builder
	csv.WriteString("row,server,msgs_per_sec,mb_per_sec,cpu_ns_per_msg,p50_us,p90_us,p99_us,p999_us,runs,failed\n")
	var bars []bar
	for _, r := range rs {
		var ev, ns stat
		for _, s := range servers {
			if !s.serves(r) {
				continue
			}
			st := summarize(res[r.Name][s.Name])
			fmt.Fprintf(&csv, "%q,%s,%.0f,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%d\n", r.Name, s.Name, st.rate, st.mbs, st.cpu,
				float64(st.lat.P50)/1e3, float64(st.lat.P90)/1e3, float64(st.lat.P99)/1e3, float64(st.lat.P999)/1e3, st.n, st.failed)
			switch s.Name {
			case "evnats":
				ev = st
			case "nats-server":
				ns = st
			}
		}
		if ev.n > 0 && ns.n > 0 {
			bars = append(bars, bar{r.Name, ev.rate / ns.rate})
		}
	}
	writeFile(dir, "results.csv", csv.String())
	caption := []string{
		"Medians, " + time.Now().UTC().Format("2006-01-02") + ", " + env + ".",
		"Command: " + commandLine(),
	}
	writeFile(dir, "ratios.svg", ratioSVG("evnats / nats-server throughput (log scale)", caption, bars))
}

func commas(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

func hasNatscli(rs []row) bool {
	for _, r := range rs {
		if r.CLI != nil {
			return true
		}
	}
	return false
}

// commandLine is how this run was started, as a user would type it.
func commandLine() string {
	parts := []string{"go run ./bench"}
	for _, a := range os.Args[1:] {
		if a == "" || strings.ContainsAny(a, " |'\"*?$()<>&;") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

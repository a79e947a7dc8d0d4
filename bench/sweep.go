package main

import (
	"fmt"
	"strconv"
	"strings"
)

// runSweep measures the fan-out and 4x4 rows for evnats at each loop count,
// with nats-server in the same rounds for the ratio, and prints the best.
func runSweep(evBin, natsBin string, rounds int, scale float64, loops []int, out, env string) {
	var sweepRows []row
	for _, r := range rows {
		if strings.HasPrefix(r.Name, "fan-out") || strings.HasPrefix(r.Name, "4x4") {
			sweepRows = append(sweepRows, r)
		}
	}
	servers := []serverKind{{Name: "nats-server", Bin: natsBin}}
	for _, l := range loops {
		servers = append(servers, serverKind{Name: "loops=" + strconv.Itoa(l), Bin: evBin, Args: []string{"--loops", strconv.Itoa(l)}})
	}
	res := runMatrix(servers, sweepRows, rounds, scale)
	var b strings.Builder
	fmt.Fprintf(&b, "Loop sweep: medians of %d alternating rounds on %s.\n\n| loops |", rounds, env)
	for _, r := range sweepRows {
		fmt.Fprintf(&b, " %s msgs/s | vs nats-server |", r.Name)
	}
	b.WriteString("\n|---|")
	for range sweepRows {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	best := map[string]string{}
	bestRate := map[string]float64{}
	for _, s := range servers {
		fmt.Fprintf(&b, "| %s |", s.Name)
		for _, r := range sweepRows {
			st := summarize(res[r.Name][s.Name])
			ns := summarize(res[r.Name]["nats-server"])
			fmt.Fprintf(&b, " %s | %.2fx |", commas(st.rate), st.rate/ns.rate)
			if s.Name != "nats-server" && st.rate > bestRate[r.Name] {
				bestRate[r.Name], best[r.Name] = st.rate, s.Name
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, r := range sweepRows {
		fmt.Fprintf(&b, "Best for %s: %s (%s msgs/s).\n", r.Name, best[r.Name], commas(bestRate[r.Name]))
	}
	fmt.Println(b.String())
	writeFile(out, "loops-sweep.md", b.String())
}

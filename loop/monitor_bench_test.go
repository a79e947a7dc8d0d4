package loop_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/evnats/evnats/loop"
)

// discardWriter is a ResponseWriter that keeps nothing, so a benchmark
// counts the handler's allocations alone.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkScrape is one request to each endpoint a dashboard polls, on a
// server with 2 event loops and 8 clients: its allocations are what a
// scrape leaves for the garbage collector.
func BenchmarkScrape(b *testing.B) {
	s := startServer(b, loop.Options{IO: loop.IOGnet, Loops: 2, HTTPPort: -1})
	for i := 0; i < 8; i++ {
		nc := connect(b, s)
		if _, err := nc.SubscribeSync("bench.>"); err != nil {
			b.Fatal(err)
		}
		nc.Flush()
	}
	m := s.Monitor()
	for _, path := range []string{"/varz", "/connz", "/metrics", "/loopz"} {
		b.Run(path, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, path, nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for range b.N {
				m.ServeHTTP(w, r)
			}
		})
	}
}

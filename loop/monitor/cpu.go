package monitor

import (
	"sync"
	"syscall"
	"time"
)

// cpuSampler turns the process's CPU time into a percentage of one core
// over the time since the previous sample (nats-server's /varz cpu).
type cpuSampler struct {
	mu       sync.Mutex // guards the fields below
	lastCPU  time.Duration
	lastWall time.Time
	last     float64
}

var processStart = time.Now()

// percent is the CPU use since the previous call (since start for the
// first), rounded to a tenth; calls closer than 100 ms apart repeat it.
func (c *cpuSampler) percent() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.lastWall.IsZero() {
		c.lastWall = processStart
	}
	if now.Sub(c.lastWall) < 100*time.Millisecond && c.last != 0 {
		return c.last
	}
	used := cpuTime()
	wall := now.Sub(c.lastWall)
	if wall > 0 {
		c.last = float64(int64(float64(used-c.lastCPU)/float64(wall)*1000+0.5)) / 10
	}
	c.lastCPU, c.lastWall = used, now
	return c.last
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// RSS is the process's resident memory in bytes (Linux /proc), or 0.
func RSS() int64 {
	_, rss, _ := statm()
	return rss
}

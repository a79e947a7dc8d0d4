// Copyright (c) 2025 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//   http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package netpoll

import (
	"errors"
	"runtime"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/queue"
)

// evnats patch 3: work that yields the event loop.

type yieldedTask struct {
	fn    queue.Func
	param any
}

// yieldList holds the tasks passed to Poller.Yield. It is only touched by the
// poller's goroutine, so it needs no lock; its two slices are reused.
type yieldList struct {
	tasks   []yieldedTask // to run at the end of the current poll round
	running []yieldedTask // being run
	gosched bool          // evnats patch 5: Gosched once before the next blocking wait
}

func (l *yieldList) empty() bool { return len(l.tasks) == 0 }

// run runs the tasks yielded before it started; those they yield run next round.
func (l *yieldList) run() error {
	if len(l.tasks) == 0 {
		return nil
	}
	l.tasks, l.running = l.running[:0], l.tasks
	for i := range l.running {
		t := l.running[i]
		l.running[i] = yieldedTask{}
		if err := t.fn(t.param); errors.Is(err, errorx.ErrEngineShutdown) {
			return err
		}
	}
	return nil
}

// Yield queues fn(param) to run once in the current poll round, after its I/O
// events and its tasks have been handled; what fn yields in turn runs in the
// next round, after that round's events. While work is yielded the poller does
// not block in its wait. Use it to continue work that was cut short so as not
// to starve other connections (the ET read and write chunks): unlike Trigger,
// a task that yields itself again cannot run twice without a poll in between.
// Yield must only be called on the poller's goroutine (from an I/O callback,
// a task or a yielded function); it does not wake the poller.
func (p *Poller) Yield(fn queue.Func, param any) {
	p.yielded.tasks = append(p.yielded.tasks, yieldedTask{fn, param})
}

// GoschedBeforeWait makes the poller call runtime.Gosched once before it next
// blocks in its wait (evnats patch 5), so that a goroutine the loop made
// runnable (a channel send, a go statement: it sits in the loop's P's
// run-next slot) runs at once on this P instead of waiting until the runtime
// takes the P from the blocked loop thread. Poller goroutine only.
func (p *Poller) GoschedBeforeWait() { p.yielded.gosched = true }

// blockMsec is the timeout for the next wait after a round: 0 while work is
// yielded, else -1 (block), after the Gosched GoschedBeforeWait asked for.
func (l *yieldList) blockMsec() int {
	if len(l.tasks) > 0 {
		return 0
	}
	if l.gosched {
		l.gosched = false
		runtime.Gosched()
	}
	return -1
}

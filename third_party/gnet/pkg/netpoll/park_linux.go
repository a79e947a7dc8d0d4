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

//go:build linux && !poll_opt

package netpoll

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// evnats patch 6: an idle poller parks its goroutine in the Go runtime's
// network poller instead of blocking its thread in epoll_wait.
//
// A goroutine blocked in a syscall keeps its P in the syscall state. With
// every P held by a loop blocked in epoll_wait the runtime's sysmon thread
// takes each P back after 20 µs, wakes up every 20 µs while it does, and is
// woken (futex) by the next loop that returns from epoll_wait without a P:
// on a 2-core machine with two loops it used a fifth of the server's CPU.
// A parked goroutine holds no P: with all Ps idle sysmon sleeps, as it does
// for a server whose goroutines wait in the runtime's poller.
//
// The loop's epoll fd is itself pollable (readable while it has events), so
// a duplicate of it is registered with the runtime's poller through an
// os.File. The wait polls the loop's epoll with a zero timeout and parks
// only when that finds nothing; an event arriving after that poll makes the
// duplicate readable, which the runtime reports to the parked goroutine.

// parker is the runtime-pollable duplicate of the poller's epoll fd.
type parker struct {
	f  *os.File
	rc syscall.RawConn

	// One poll's arguments and results, so that waiting allocates nothing
	// (the poll func is made once). Poller goroutine only.
	poll   func(uintptr) bool
	epfd   int
	events []unix.EpollEvent
	n      int
	err    error
}

// openParker registers a duplicate of epfd with the runtime's poller; nil
// (the poller then blocks in epoll_wait) if that is not possible.
func openParker(epfd int) *parker {
	dfd, err := unix.FcntlInt(uintptr(epfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if err = unix.SetNonblock(dfd, true); err != nil {
		_ = unix.Close(dfd)
		return nil
	}
	f := os.NewFile(uintptr(dfd), "gnet-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil
	}
	// A file the runtime could not register reports ErrNoDeadline.
	if f.SetReadDeadline(time.Time{}) != nil {
		_ = f.Close()
		return nil
	}
	pk := &parker{f: f, rc: rc, epfd: epfd}
	pk.poll = pk.pollOnce
	return pk
}

// pollOnce is the RawConn.Read callback: true (stop) when the poll found
// events or failed, false (park until readable) when it found none.
func (pk *parker) pollOnce(uintptr) bool {
	for {
		pk.n, pk.err = unix.EpollWait(pk.epfd, pk.events, 0)
		if pk.err != unix.EINTR {
			return pk.n != 0 || pk.err != nil
		}
	}
}

// wait polls epfd into events without blocking, and parks the goroutine in
// the runtime's poller until epfd has events when it found none. ok is
// false when the runtime's poller failed it (the poller then blocks in
// epoll_wait instead).
func (pk *parker) wait(events []unix.EpollEvent) (n int, err error, ok bool) {
	pk.events = events
	rerr := pk.rc.Read(pk.poll)
	pk.events = nil
	return pk.n, pk.err, rerr == nil
}

func (pk *parker) close() {
	if pk != nil {
		_ = pk.f.Close()
	}
}

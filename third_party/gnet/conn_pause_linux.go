// Copyright (c) 2019 The Gnet Authors. All rights reserved.
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     http://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

package gnet

// Changing the epoll interest with EPOLL_CTL_MOD re-checks readiness, also in
// edge-triggered mode, so re-enabling EPOLLIN reports data already waiting.
const resumeNeedsRead = false

// pauseRead drops EPOLLIN (and EPOLLRDHUP) from the interest of c, keeping
// EPOLLOUT while there is outbound data to flush or a WritevSome caller
// waits for room (always in ET mode).
func (el *eventloop) pauseRead(c *conn) error {
	isET := el.engine.opts.EdgeTriggeredIO
	if isET || !c.outboundBuffer.IsEmpty() || c.wantWritable { // wantWritable: evnats patch 4
		return el.poller.ModWrite(&c.pollAttachment, isET)
	}
	return el.poller.ModNone(&c.pollAttachment)
}

// resumeRead restores the interest c would have had without the pause.
func (el *eventloop) resumeRead(c *conn) error {
	isET := el.engine.opts.EdgeTriggeredIO
	if isET || !c.outboundBuffer.IsEmpty() || c.wantWritable { // wantWritable: evnats patch 4
		return el.poller.ModReadWrite(&c.pollAttachment, isET)
	}
	return el.poller.ModRead(&c.pollAttachment, false)
}

// modReadWrite asks for writable events, and readable ones unless reading is paused.
func (el *eventloop) modReadWrite(c *conn) error {
	if c.readPaused {
		return el.poller.ModWrite(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO)
	}
	return el.poller.ModReadWrite(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO)
}

// modRead stops asking for writable events, keeping readable ones unless reading is paused.
func (el *eventloop) modRead(c *conn) error {
	if c.readPaused {
		return el.poller.ModNone(&c.pollAttachment)
	}
	return el.poller.ModRead(&c.pollAttachment, false)
}

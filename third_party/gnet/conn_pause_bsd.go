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

//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package gnet

// Whether EV_ENABLE on an EV_CLEAR filter reports data that arrived while it was
// disabled is not relied on: ET mode reads once after resuming.
const resumeNeedsRead = true

// pauseRead disables EVFILT_READ of c; EVFILT_WRITE is managed independently.
func (el *eventloop) pauseRead(c *conn) error {
	return el.poller.DisableRead(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO)
}

// resumeRead enables EVFILT_READ of c again.
func (el *eventloop) resumeRead(c *conn) error {
	return el.poller.EnableRead(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO)
}

// modReadWrite adds EVFILT_WRITE, which leaves the (possibly disabled) EVFILT_READ alone.
func (el *eventloop) modReadWrite(c *conn) error {
	return el.poller.ModReadWrite(&c.pollAttachment, el.engine.opts.EdgeTriggeredIO)
}

// modRead deletes EVFILT_WRITE, which leaves the (possibly disabled) EVFILT_READ alone.
func (el *eventloop) modRead(c *conn) error {
	return el.poller.ModRead(&c.pollAttachment, false)
}

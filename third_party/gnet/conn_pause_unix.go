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

//go:build darwin || dragonfly || freebsd || linux || netbsd || openbsd

package gnet

import (
	"net"

	errorx "github.com/panjf2000/gnet/v2/pkg/errors"
	"github.com/panjf2000/gnet/v2/pkg/queue"
)

// PauseRead implements Conn.PauseRead.
func (c *conn) PauseRead() error {
	if c.isDatagram {
		return errorx.ErrUnsupportedOp
	}
	if !c.opened {
		return net.ErrClosed
	}
	if c.readPaused {
		return nil
	}
	if err := c.loop.pauseRead(c); err != nil {
		return err
	}
	c.readPaused = true
	return nil
}

// ResumeRead implements Conn.ResumeRead.
func (c *conn) ResumeRead() error {
	if c.isDatagram {
		return errorx.ErrUnsupportedOp
	}
	if !c.opened {
		return net.ErrClosed
	}
	if !c.readPaused {
		return nil
	}
	if err := c.loop.resumeRead(c); err != nil {
		return err
	}
	c.readPaused = false
	// Data left in the inbound buffer gets no readiness event of its own, and
	// OnTraffic must not run nested inside the caller's handler: hand it over in a task.
	if c.InboundBuffered() > 0 || (resumeNeedsRead && c.loop.engine.opts.EdgeTriggeredIO) {
		return c.loop.poller.Trigger(queue.LowPriority, c.loop.resumed, c)
	}
	return nil
}

// resumed runs on the event-loop after ResumeRead: it calls OnTraffic for inbound
// data buffered before the pause and, where the poller does not report data that
// is already waiting on re-enabling, reads the socket.
func (el *eventloop) resumed(a any) error {
	c := a.(*conn)
	if !c.opened || c.readPaused {
		return nil // closed or paused again meanwhile
	}
	if c.InboundBuffered() > 0 {
		if err := el.handleAction(c, el.eventHandler.OnTraffic(c)); err != nil {
			return err
		}
	}
	if resumeNeedsRead && el.engine.opts.EdgeTriggeredIO {
		return el.read(c)
	}
	return nil
}

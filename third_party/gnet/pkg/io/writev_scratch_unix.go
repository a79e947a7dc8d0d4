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

package io

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// WritevScratch is Writev with the iovec array kept in *scratch and reused
// (evnats patch 6): unix.Writev makes a new one per call once there are more
// than a handful of buffers, an allocation per write of a loop that writes
// hundreds of buffers at once. Empty buffers are left out. The scratch holds
// no references after the call.
func WritevScratch(fd int, iov [][]byte, scratch *[]unix.Iovec) (int, error) {
	s := (*scratch)[:0]
	for _, b := range iov {
		if len(b) == 0 {
			continue
		}
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		s = append(s, v)
	}
	*scratch = s
	if len(s) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&s[0])), uintptr(len(s)))
	for i := range s {
		s[i] = unix.Iovec{}
	}
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

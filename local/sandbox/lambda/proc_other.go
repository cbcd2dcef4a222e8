//go:build unix && !linux

package lambda

import "syscall"

// sysProcAttr puts each instance in its own process group, so that it and
// anything it starts can be signalled together.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// maxMemoryMB is not measured outside Linux.
func maxMemoryMB(int) int { return 0 }

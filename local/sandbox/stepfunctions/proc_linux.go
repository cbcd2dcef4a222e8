package stepfunctions

import "syscall"

// sysProcAttr has the kernel kill a runner if the sandbox dies without
// closing, so no node process outlives it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

package lambda

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// sysProcAttr puts each instance in its own process group (so that it and
// anything it starts can be signalled together) and has the kernel kill it
// if the sandbox dies without closing.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// maxMemoryMB is the peak resident memory of a live process (VmHWM), for
// the REPORT line; 0 if it cannot be read.
func maxMemoryMB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return (kb + 1023) / 1024
		}
	}
	return 0
}

package proc

import (
	"fmt"
	"os"
	"strings"
	"syscall"
)

// FileLimit returns the soft and hard limits on open files.
func FileLimit() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, err
	}
	return lim.Cur, lim.Max, nil
}

// EnsureFileLimit raises the limit on open files to at least n, the hard
// limit too when it is lower (which needs CAP_SYS_RESOURCE, and n at most
// /proc/sys/fs/nr_open), and returns the soft limit it ends with. The
// processes started afterwards inherit it. When the limit cannot reach n,
// the error says why; the limit is then as high as it could go.
func EnsureFileLimit(n uint64) (uint64, error) {
	soft, hard, err := FileLimit()
	if err != nil {
		return 0, err
	}
	if soft >= n {
		return soft, nil
	}
	if hard < n {
		lim := syscall.Rlimit{Cur: n, Max: n}
		err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if err == nil {
			return n, nil
		}
		if _, err2 := RaiseFileLimit(); err2 != nil {
			return soft, err2
		}
		why := err.Error()
		if err == syscall.EPERM {
			why = "raising the hard limit needs CAP_SYS_RESOURCE, which this process lacks (root or not)"
		}
		return hard, fmt.Errorf("open-file limit: %d needed, the hard limit is %d and could not be raised: %s (fs.nr_open = %s)",
			n, hard, why, readSys("fs/nr_open"))
	}
	return RaiseFileLimit()
}

// kernelLimits are the /proc/sys settings that bound how many connections
// a process, and the machine, can hold.
var kernelLimits = []string{
	"fs/file-max",                  // open files, machine-wide
	"fs/nr_open",                   // the highest RLIMIT_NOFILE
	"net/core/somaxconn",           // the listen backlog cap
	"net/ipv4/tcp_max_syn_backlog", // half-open connections queued
	"net/ipv4/ip_local_port_range", // ephemeral ports per source address
	"net/ipv4/tcp_mem",             // TCP buffer pages: low, pressure, high
}

// KernelLimits returns the kernel settings that limit connection counts
// (keyed like sysctl: fs.file-max, …) and this process's open-file limit
// (rlimit_nofile, "soft/hard").
func KernelLimits() map[string]string {
	m := map[string]string{}
	for _, k := range kernelLimits {
		m[strings.ReplaceAll(k, "/", ".")] = readSys(k)
	}
	if soft, hard, err := FileLimit(); err == nil {
		m["rlimit_nofile"] = fmt.Sprintf("%d/%d", soft, hard)
	}
	return m
}

func readSys(key string) string {
	b, err := os.ReadFile("/proc/sys/" + key)
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

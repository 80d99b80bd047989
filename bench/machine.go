package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// machine describes where and how the run happened.
type machine struct {
	Command   string            `json:"command"`
	CPUs      int               `json:"nproc"`
	CPUModel  string            `json:"cpu_model"`
	Kernel    string            `json:"kernel"`
	MemTotal  string            `json:"mem_total"`
	Pinning   string            `json:"pinning"`
	ServerCPU int               `json:"server_cpu"`
	LoadCPU   int               `json:"load_cpu"`
	Go        string            `json:"go"`
	Node      string            `json:"node"`
	Rally     string            `json:"rally"`
	Versions  map[string]string `json:"versions"`
	Started   string            `json:"started"`
	Elapsed   string            `json:"elapsed"`
	Smoke     bool              `json:"smoke"`
	Repeat    int               `json:"repeat"`
	LoadgenGo string            `json:"loadgen"`
}

func numCPU() int {
	n := 0
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "processor") {
			n++
		}
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range bytes.Lines(b) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(bytes.TrimSpace(k)) == "model name" {
			return string(bytes.TrimSpace(v))
		}
	}
	return "unknown"
}

func memTotal() string {
	b, _ := os.ReadFile("/proc/meminfo")
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("MemTotal:")); ok {
			var kb int64
			fmt.Sscan(string(v), &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "unknown"
}

func output(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func describeMachine(o options) machine {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cmd := "go -C bench run ."
	if len(os.Args) > 1 {
		cmd += " " + strings.Join(os.Args[1:], " ")
	}
	rally := output("git", "-C", "..", "rev-parse", "--short", "HEAD")
	if rally == "" {
		rally = "unknown commit"
	} else if dirty := output("git", "-C", "..", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench"); dirty != "" {
		rally += " + uncommitted changes in the work tree"
	}
	return machine{
		Command:   cmd,
		CPUs:      numCPU(),
		CPUModel:  cpuModel(),
		Kernel:    strings.TrimSpace(string(kernel)),
		MemTotal:  memTotal(),
		Pinning:   pinning(o),
		ServerCPU: o.serverCPU,
		LoadCPU:   o.loadCPU,
		Go:        runtime.Version(),
		Node:      output("node", "--version"),
		Rally:     rally,
		Versions:  map[string]string{},
		Smoke:     o.smoke,
		Repeat:    o.repeat,
		LoadgenGo: "raw websocket + minimal Engine.IO/Socket.IO framing (bench/internal/wsclient), one goroutine per connection " +
			"(idle-100k: parked on one epoll loop, bench/internal/park); long-polling: raw HTTP/1.1 on a keep-alive GET and POST connection per client (bench/internal/pollclient; -http net/http in the loadgen for net/http)",
	}
}

func niceNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", both at nice %d", n)
}

// fillVersions takes each server's version from what it reported.
func fillVersions(m *machine, runs []Run) {
	for _, r := range runs {
		keys, stats := []string{r.Server}, []string{"server_stats"}
		if a, b, ok := strings.Cut(r.Server, "+"); ok { // a cross-server pair
			keys, stats = []string{a, b}, []string{"server_stats", "server2_stats"}
		}
		for i, key := range keys {
			st, _ := r.Result[stats[i]].(map[string]any)
			if v, _ := st["version"].(string); v != "" {
				m.Versions[key] = v
			}
		}
	}
}

// pinning describes where the servers and the load generator run.
func pinning(o options) string {
	where := func(cpu int) string {
		if cpu < 0 {
			return "not pinned"
		}
		return fmt.Sprintf("pinned to CPU %d", cpu)
	}
	s := "each server " + where(o.serverCPU)
	if o.serverCPU >= 0 {
		s += " (taskset; Go servers get GOMAXPROCS=1 from the affinity)"
	}
	return s + ", load generator " + where(o.loadCPU) + niceNote(o.nice)
}

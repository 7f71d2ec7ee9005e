package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes the host a benchmark ran on.
type Machine struct {
	CPUs     int    // logical CPUs usable by the process
	CPUModel string // "" when unknown
	MemBytes int64  // total memory, 0 when unknown
	OS, Arch string
	Go       string // Go version of the bench binary
}

// ThisMachine describes the current host from the runtime and /proc.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), OS: runtime.GOOS, Arch: runtime.GOARCH, Go: runtime.Version()}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		if n, err := strconv.ParseInt(strings.TrimSuffix(kb, " kB"), 10, 64); err == nil {
			m.MemBytes = n << 10
		}
	}
	return m
}

// String is a one-line description, e.g. "2 CPUs (Intel Xeon), 7.8 GiB, linux/amd64, go1.26.8".
func (m Machine) String() string {
	cpu := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.CPUModel != "" {
		cpu += " (" + m.CPUModel + ")"
	}
	mem := "memory unknown"
	if m.MemBytes > 0 {
		mem = fmt.Sprintf("%.1f GiB RAM", float64(m.MemBytes)/(1<<30))
	}
	return fmt.Sprintf("%s, %s, %s/%s, %s", cpu, mem, m.OS, m.Arch, m.Go)
}

// procField returns the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

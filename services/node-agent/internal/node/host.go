package node

import (
	"bufio"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
)

// Machine is the Host this process runs on: CPUs, /proc/meminfo, the file
// system holding DiskPath, and the kernel's pid table.
type Machine struct {
	// DiskPath is on the file system that holds containers and volumes.
	DiskPath string
}

// Capacity reports cpu, memory and ephemeral-storage.
func (m Machine) Capacity() (map[string]string, error) {
	mem, err := meminfo("MemTotal")
	if err != nil {
		return nil, err
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(m.DiskPath, &fs); err != nil {
		return nil, fmt.Errorf("statfs %s: %w", m.DiskPath, err)
	}
	return map[string]string{
		"cpu":               strconv.Itoa(goruntime.NumCPU()),
		"memory":            strconv.FormatInt(mem/1024, 10) + "Ki",
		"ephemeral-storage": strconv.FormatUint(fs.Blocks*uint64(fs.Bsize)/1024, 10) + "Ki",
	}, nil
}

// Usage reports available memory and disk and process ids in use.
func (m Machine) Usage() (Usage, error) {
	avail, err := meminfo("MemAvailable")
	if err != nil {
		return Usage{}, err
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(m.DiskPath, &fs); err != nil {
		return Usage{}, fmt.Errorf("statfs %s: %w", m.DiskPath, err)
	}
	u := Usage{
		MemoryAvailableBytes: avail,
		DiskAvailableBytes:   int64(fs.Bavail) * int64(fs.Bsize),
		DiskTotalBytes:       int64(fs.Blocks) * int64(fs.Bsize),
	}
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		u.PIDsMax, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	if ents, err := os.ReadDir("/proc"); err == nil {
		for _, e := range ents {
			if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
				u.PIDsInUse++
			}
		}
	}
	return u, nil
}

// meminfo returns a /proc/meminfo field in bytes.
func meminfo(field string) (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != field {
			continue
		}
		fs := strings.Fields(v)
		n, err := strconv.ParseInt(fs[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/meminfo %s: %w", field, err)
		}
		if len(fs) > 1 && fs[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("/proc/meminfo has no %s", field)
}

// Fixed is a Host with set figures, for simulated nodes.
type Fixed struct {
	Cap map[string]string
	Use Usage
}

// Capacity returns Cap.
func (f Fixed) Capacity() (map[string]string, error) { return f.Cap, nil }

// Usage returns Use.
func (f Fixed) Usage() (Usage, error) { return f.Use, nil }

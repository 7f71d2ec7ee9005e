package network

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
)

// HostsFile returns the /etc/hosts of a pod: localhost, and the pod's own
// hostname on its address.
func HostsFile(hostname, ip string) []byte {
	var b bytes.Buffer
	b.WriteString("# Bosun-managed hosts file.\n")
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if ip != "" && hostname != "" {
		fmt.Fprintf(&b, "%s\t%s\n", ip, hostname)
	}
	return b.Bytes()
}

// ResolvConf derives a pod's /etc/resolv.conf from the node's: the same
// search domains and options, without loopback name servers (which the
// pod's own loopback would not answer). With no name server left it falls
// back to the given ones.
func ResolvConf(hostResolvConf []byte, fallback []string) []byte {
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(hostResolvConf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") || strings.HasPrefix(f[0], ";") {
			continue
		}
		if f[0] == "nameserver" {
			if len(f) < 2 || strings.HasPrefix(f[1], "127.") || f[1] == "::1" {
				continue
			}
			servers++
		}
		out.WriteString(line + "\n")
	}
	if servers == 0 {
		for _, s := range fallback {
			fmt.Fprintf(&out, "nameserver %s\n", s)
		}
	}
	return out.Bytes()
}

// WritePodFiles writes hosts and resolv.conf for a pod under dir and
// returns their paths.
func WritePodFiles(dir, hostname, ip string) (hostsPath, resolvPath string, err error) {
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	hostsPath, resolvPath = dir+"/hosts", dir+"/resolv.conf"
	if err := os.WriteFile(hostsPath, HostsFile(hostname, ip), 0o644); err != nil {
		return "", "", fmt.Errorf("writing hosts file: %w", err)
	}
	if err := os.WriteFile(resolvPath, ResolvConf(hostResolv, []string{"8.8.8.8"}), 0o644); err != nil {
		return "", "", fmt.Errorf("writing resolv.conf: %w", err)
	}
	return hostsPath, resolvPath, nil
}

package agent

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// DefaultRouteInterface returns the interface of the IPv4 default route,
// or of the IPv6 one on a host without IPv4 default route (what `interface
// management 0` means when --mgmt-interface is not given), read from
// /proc/net/route and /proc/net/ipv6_route; "" when there is none.
func DefaultRouteInterface() (string, error) {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return "", err
	}
	defer f.Close()
	dev, err := defaultRouteFrom(f)
	if dev != "" || err != nil {
		return dev, err
	}
	f6, err := os.Open("/proc/net/ipv6_route")
	if err != nil {
		return "", nil // no IPv6
	}
	defer f6.Close()
	return defaultRoute6From(f6)
}

// defaultRoute6From parses /proc/net/ipv6_route (no header): destination,
// prefix length, source, source length, next hop, metric, refcount, use,
// flags, device. The default route is ::/0 with a next hop; the lowest
// metric wins.
func defaultRoute6From(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", uint64(0)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[4] == strings.Repeat("0", 32) || f[9] == "lo" {
			continue
		}
		var metric uint64
		fmt.Sscanf(f[5], "%x", &metric)
		if best == "" || metric < bestMetric {
			best, bestMetric = f[9], metric
		}
	}
	return best, sc.Err()
}

// defaultRouteFrom parses /proc/net/route: the first line is a header; the
// default route has destination and mask 00000000. The lowest metric wins.
func defaultRouteFrom(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	best, bestMetric := "", -1
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" {
			continue
		}
		var metric int
		fmt.Sscan(f[6], &metric)
		if bestMetric < 0 || metric < bestMetric {
			best, bestMetric = f[0], metric
		}
	}
	return best, sc.Err()
}

// ParseInterfaceMap parses --interface-map: "ethernet0/1=eth1,ethernet 0/2=eth2"
// into {"0/1": "eth1", "0/2": "eth2"}. The "ethernet" prefix is optional.
func ParseInterfaceMap(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		k = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(k), "ethernet"))
		v = strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("bad interface map item %q: want ethernetS/P=IFNAME", item)
		}
		var slot, port int
		if n, err := fmt.Sscanf(k, "%d/%d", &slot, &port); n != 2 || err != nil || fmt.Sprintf("%d/%d", slot, port) != k {
			return nil, fmt.Errorf("bad interface map item %q: want ethernetS/P=IFNAME", item)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("interface map names ethernet %s twice", k)
		}
		m[k] = v
	}
	return m, nil
}

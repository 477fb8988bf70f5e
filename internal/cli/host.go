package cli

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"strings"

	"github.com/slxsh/slxsh/internal/acl"
)

// The host commands: what SLX-OS shows about the switch, for this Linux
// host (show chassis, show inventory chassis, show process memory summary,
// show interface, show ipv6 interface brief, show lldp neighbors detail).
// Their output is shaped for the parsers of Ansible's slxos_facts and
// cliconf plugin; where Linux has nothing to report the answer is empty.

// Host describes the host the shell runs on.
type Host interface {
	// Chassis returns the model (one word), product name and serial
	// number ("" when not known).
	Chassis() (model, product, serial string)
	// Memory returns the total and available memory in KiB.
	Memory() (total, free uint64, err error)
	// Interfaces returns the network interfaces, sorted by name.
	Interfaces() ([]HostInterface, error)
}

// HostInterface is one network interface of the host.
type HostInterface struct {
	Name     string
	Up       bool
	Loopback bool
	MAC      string
	MTU      int
	Addrs    []string // ADDR/LEN, IPv4 and IPv6
}

// LinuxHost is the Host this process runs on (its network namespace).
type LinuxHost struct{}

// Chassis implements Host from the kernel and the DMI data in /sys.
func (LinuxHost) Chassis() (model, product, serial string) {
	read := func(name string) string {
		b, _ := os.ReadFile("/sys/class/dmi/id/" + name)
		return strings.TrimSpace(string(b))
	}
	return "Linux-" + runtime.GOARCH, read("product_name"), read("product_serial")
}

// Memory implements Host from /proc/meminfo.
func (LinuxHost) Memory() (total, free uint64, err error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var n uint64
		key, rest, _ := strings.Cut(sc.Text(), ":")
		fmt.Sscan(rest, &n)
		switch key {
		case "MemTotal":
			total = n
		case "MemAvailable":
			free = n
		}
	}
	return total, free, sc.Err()
}

// Interfaces implements Host with the interfaces of this namespace.
func (LinuxHost) Interfaces() ([]HostInterface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []HostInterface
	for _, i := range ifs {
		h := HostInterface{Name: i.Name, Up: i.Flags&net.FlagUp != 0, Loopback: i.Flags&net.FlagLoopback != 0,
			MAC: i.HardwareAddr.String(), MTU: i.MTU}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			h.Addrs = append(h.Addrs, a.String())
		}
		out = append(out, h)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, nil
}

func hostCommands(show *atom, pipe node) []*command {
	return []*command{
		execCmd(seq(show, kw("chassis", "Chassis (this host)"), pipe), cmdShowChassis),
		execCmd(seq(show, kw("inventory", "Hardware inventory"), opt(kw("chassis", "The chassis")), pipe), cmdShowInventory),
		execCmd(seq(show, kw("process", "Processes"), kw("memory", "Memory use"), kw("summary", "Totals"), pipe), cmdShowMemory),
		execCmd(seq(show, kw("interface", "Interface status"), pipe), cmdShowInterfaces),
		execCmd(seq(show, kw("ipv6", "IPv6 information"), kw("interface", "IPv6 interfaces"), kw("brief", "One line per address"), pipe), cmdShowIPv6Brief),
		execCmd(seq(show, kw("lldp", "LLDP information"), kw("neighbors", "LLDP neighbors"), opt(kw("detail", "In detail")), pipe),
			func(*Session, io.Writer, *NoArgs) error { return nil }), // Linux runs no LLDP agent of ours: no neighbors
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func cmdShowChassis(s *Session, w io.Writer, _ *NoArgs) error {
	model, product, serial := s.host_.Chassis()
	fmt.Fprintf(w, "Chassis Name:\t%s\n", model)
	fmt.Fprintf(w, "Host Name:\t%s\n", s.host)
	fmt.Fprintf(w, "Product Name:\t%s\n", orUnknown(product))
	_, err := fmt.Fprintf(w, "Serial Number:\t%s\n", orUnknown(serial))
	return err
}

func cmdShowInventory(s *Session, w io.Writer, _ *NoArgs) error {
	model, product, serial := s.host_.Chassis()
	fmt.Fprintf(w, "NAME: Chassis  DESCR: %s\n", orUnknown(product))
	_, err := fmt.Fprintf(w, "SID:%s  SwitchType: Linux\nPN:%s  SN:%s\n", model,
		strings.ReplaceAll(orUnknown(product), " ", "_"), strings.ReplaceAll(orUnknown(serial), " ", "_"))
	return err
}

func cmdShowMemory(s *Session, w io.Writer, _ *NoArgs) error {
	total, free, err := s.host_.Memory()
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "Total Memory: %d KB\nTotal Used: %d KB\nTotal Free: %d KB\n", total, total-free, free)
	return err
}

// ifLabel is how show interface names a Linux interface: management 0 or
// ethernet S/P when the agent maps it, else Interface NAME (two words,
// which is what the slxos facts parser keys interfaces by).
func (s *Session) ifLabel(names []InterfaceName, linux string) string {
	for _, n := range names {
		if n.Linux == linux && n.Kind == acl.IfManagement {
			return "Management " + n.Name
		}
		if n.Linux == linux && n.Kind == acl.IfEthernet {
			return "Ethernet " + n.Name
		}
	}
	return "Interface " + linux
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func cmdShowInterfaces(s *Session, w io.Writer, _ *NoArgs) error {
	ifs, err := s.host_.Interfaces()
	if err != nil {
		return err
	}
	names, _ := Call(s.b, OpInterfaces, NoArgs{})
	for i, h := range ifs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		kind := "Ethernet"
		if h.Loopback {
			kind = "Loopback"
		}
		fmt.Fprintf(w, "%s is %s, line protocol is %s\n", s.ifLabel(names, h.Name), upDown(h.Up), upDown(h.Up))
		fmt.Fprintf(w, "Hardware is %s, address is %s\n", kind, orUnknown(h.MAC))
		fmt.Fprintf(w, "    Linux interface %s\n", h.Name)
		primary := true
		for _, a := range h.Addrs {
			if strings.Contains(a, ":") {
				continue
			}
			which := "Secondary"
			if primary {
				which, primary = "Primary", false
			}
			fmt.Fprintf(w, "%s Internet Address is %s\n", which, a)
		}
		fmt.Fprintf(w, "MTU %d bytes\n", h.MTU)
	}
	return nil
}

func cmdShowIPv6Brief(s *Session, w io.Writer, _ *NoArgs) error {
	ifs, err := s.host_.Interfaces()
	if err != nil {
		return err
	}
	names, _ := Call(s.b, OpInterfaces, NoArgs{})
	var rows []string
	for _, h := range ifs {
		for _, a := range h.Addrs {
			if strings.Contains(a, ":") {
				rows = append(rows, fmt.Sprintf("%-24s %-8s %-8s %s\n", s.ifLabel(names, h.Name), upDown(h.Up), upDown(h.Up), a))
				break // the primary address
			}
		}
	}
	if len(rows) == 0 {
		return nil // nothing to report
	}
	fmt.Fprintf(w, "%-24s %-8s %-8s %s\n%s\n", "Interface", "Status", "Protocol", "IPv6 Address", strings.Repeat("=", 64))
	_, err = io.WriteString(w, strings.Join(rows, ""))
	return err
}

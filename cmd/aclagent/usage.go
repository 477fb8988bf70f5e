package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/slxsh/slxsh/internal/agent/wire"
)

// synopsis is the head of `aclagent --help` (SPEC §6); the flag list below
// it is generated from the flag set, so a new flag cannot be left out.
const synopsis = `usage: aclagent [--config FILE]          startup-config (default /etc/slxsh/startup-config)
                [--socket PATH]          shells connect here (default ` + wire.DefaultSocket + `)
                [--table NAME]           the nftables table it owns, family inet (default slxsh)
                [--mgmt-interface IF]    what interface management 0 means
                [--interface-map ethernet0/1=eth1,...]
                [--admin-group GROUP]    who may change the config besides root (default slxsh)
                [--metrics ADDR]         Prometheus endpoint, off by default
       aclagent --check FILE            validate FILE, print the compiled ruleset, no kernel
       aclagent --version

aclagent is the slxsh daemon. It runs as root (CAP_NET_ADMIN), loads the
startup-config, compiles the configuration into one nftables table and applies
every change as one atomic transaction; slxsh shells are its clients.
SIGHUP reloads the startup-config (unchanged entries keep their counts);
SIGTERM stops the agent and leaves the rules enforcing. A restarted agent
adopts its table in place. SLXSH_SOCKET overrides the default socket.
Time ranges are in local time (TZ, else /etc/localtime): the kernel enforces
them in UTC and the agent recompiles at every UTC-offset change of the zone.
Installation and operation: dist/INSTALL.md.

Flags:
`

// flagOrder lists flags in the order of the synopsis; flags not listed
// follow in alphabetical order.
var flagOrder = []string{"config", "socket", "table", "mgmt-interface", "interface-map", "admin-group", "metrics", "check"}

// usage is the text of `aclagent --help`.
func usage() string {
	var b strings.Builder
	b.WriteString(synopsis)
	fs := newFlagSet(&flags{})
	var all []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) { all = append(all, f) })
	rank := func(f *flag.Flag) int {
		if i := slices.Index(flagOrder, f.Name); i >= 0 {
			return i
		}
		return len(flagOrder)
	}
	slices.SortStableFunc(all, func(x, y *flag.Flag) int { return rank(x) - rank(y) })
	for _, f := range all {
		b.WriteString(flagLine(f))
	}
	b.WriteString("  -h, --help\n        show this help\n")
	return b.String()
}

// flagLine renders one flag as "  --name ARG" and its help on the next
// line, with the default when the help does not already give one.
func flagLine(f *flag.Flag) string {
	arg, help := flag.UnquoteUsage(f)
	head := "  --" + f.Name
	if arg != "" {
		head += " " + arg
	}
	if f.DefValue != "" && f.DefValue != "false" && !strings.Contains(help, "(default") {
		help += fmt.Sprintf(" (default %s)", f.DefValue)
	}
	return head + "\n        " + help + "\n"
}

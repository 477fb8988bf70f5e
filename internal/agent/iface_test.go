package agent

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultRouteFrom(t *testing.T) {
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth1	0000000A	00000000	0001	0	0	0	00FFFFFF	0	0	0
wlan0	00000000	0101A8C0	0003	0	0	600	00000000	0	0	0
eth0	00000000	0100000A	0003	0	0	100	00000000	0	0	0
`
	got, err := defaultRouteFrom(strings.NewReader(table))
	if err != nil || got != "eth0" {
		t.Errorf("defaultRouteFrom = %q, %v; want eth0 (lowest metric)", got, err)
	}
	got, err = defaultRouteFrom(strings.NewReader("Iface\tDestination\n"))
	if err != nil || got != "" {
		t.Errorf("no default route: %q, %v; want \"\"", got, err)
	}
}

func TestParseInterfaceMap(t *testing.T) {
	got, err := ParseInterfaceMap("ethernet0/1=eth1, ethernet 0/2=eth2,3/10=ens3")
	want := map[string]string{"0/1": "eth1", "0/2": "eth2", "3/10": "ens3"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseInterfaceMap = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"ethernet0/1", "ethernet0/1=", "eth0=eth1", "ethernet0/01=eth1", "ethernet0/1=a,ethernet0/1=b"} {
		if m, err := ParseInterfaceMap(bad); err == nil {
			t.Errorf("ParseInterfaceMap(%q) = %v, want an error", bad, m)
		}
	}
}

func TestDefaultRoute6From(t *testing.T) {
	const table = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth2
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000002 00000064 00000001 00000000 00000003     eth3
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`
	got, err := defaultRoute6From(strings.NewReader(table))
	if err != nil || got != "eth3" {
		t.Errorf("defaultRoute6From = %q, %v; want eth3 (lowest metric, unreachable ::/0 on lo ignored)", got, err)
	}
}

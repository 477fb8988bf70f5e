package netns

import "testing"

// Addresses of the Pair topology.
const (
	PairClient4 = "10.0.0.1" // client on c0
	PairServer4 = "10.0.0.2" // server on s0
	PairClient6 = "fd00::1"  // client on c0
	PairServer6 = "fd00::2"  // server on s0
	PairNet4    = "10.0.0.0/24"
	PairNet6    = "fd00::/64"
)

// Pair is a client and a server namespace joined by one veth pair: c0 in
// Client (10.0.0.1/24, fd00::1/64) and s0 in Server (10.0.0.2/24, fd00::2/64).
type Pair struct {
	Client, Server *NS
}

// NewPair builds a Pair.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	p := &Pair{Client: New(t), Server: New(t)}
	Link(t, p.Client, "c0", p.Server, "s0")
	p.Client.AddAddr(t, "c0", PairClient4+"/24")
	p.Client.AddAddr(t, "c0", PairClient6+"/64")
	p.Server.AddAddr(t, "s0", PairServer4+"/24")
	p.Server.AddAddr(t, "s0", PairServer6+"/64")
	return p
}

// Addresses of the Routed topology.
const (
	RoutedClient4 = "10.1.0.2" // client on c0
	RoutedRouterC = "10.1.0.1" // router on rc (client side)
	RoutedRouterS = "10.2.0.1" // router on rs (server side)
	RoutedServer4 = "10.2.0.2" // server on s0
	RoutedClient6 = "fd01::2"
	RoutedServer6 = "fd02::2"
)

// Routed is client — router — server: the client (c0: 10.1.0.2/24,
// fd01::2/64) reaches the server (s0: 10.2.0.2/24, fd02::2/64) through the
// Router namespace (rc: 10.1.0.1, fd01::1; rs: 10.2.0.1, fd02::1), which
// forwards. Filtering in Router sees the traffic in its forward hook.
type Routed struct {
	Client, Router, Server *NS
}

// NewRouted builds a Routed topology with default routes on both ends.
func NewRouted(t testing.TB) *Routed {
	t.Helper()
	r := &Routed{Client: New(t), Router: New(t), Server: New(t)}
	Link(t, r.Client, "c0", r.Router, "rc")
	Link(t, r.Router, "rs", r.Server, "s0")
	r.Client.AddAddr(t, "c0", RoutedClient4+"/24")
	r.Client.AddAddr(t, "c0", RoutedClient6+"/64")
	r.Router.AddAddr(t, "rc", RoutedRouterC+"/24")
	r.Router.AddAddr(t, "rc", "fd01::1/64")
	r.Router.AddAddr(t, "rs", RoutedRouterS+"/24")
	r.Router.AddAddr(t, "rs", "fd02::1/64")
	r.Server.AddAddr(t, "s0", RoutedServer4+"/24")
	r.Server.AddAddr(t, "s0", RoutedServer6+"/64")
	r.Router.Forwarding(t)
	r.Client.Route(t, "default", RoutedRouterC)
	r.Client.Route(t, "default", "fd01::1")
	r.Server.Route(t, "default", RoutedRouterS)
	r.Server.Route(t, "default", "fd02::1")
	return r
}

// Package agent is aclagent's core: it owns the running configuration,
// turns each configuration transaction into one compiled ruleset applied to
// the kernel, persists the startup-config, repairs drift, and answers the
// shell's show and clear commands over a local unix socket.
//
// The pieces:
//
//   - server.go, auth.go: the socket server; peer credentials (SO_PEERCRED,
//     SO_PEERGROUPS) decide who may change the configuration.
//   - agent.go: the running config and the one mutex that serialises every
//     change: apply lines to the current config, compile, install in the
//     kernel, and only then commit.
//   - reconcile.go: startup, SIGHUP reload, and the drift-repair loop.
//   - show.go, metrics.go: what the shell and Prometheus see.
//   - wire (a subpackage, free of kernel code): the versioned protocol, one
//     JSON request and one JSON response per connection, and the shell's
//     side, a cli.Backend that talks to the socket.
package agent

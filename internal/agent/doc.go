// Package agent is aclagent's core: it owns the running configuration,
// turns each configuration transaction into one compiled ruleset applied to
// the kernel, persists the startup-config, repairs drift, and answers the
// shell's requests over a local unix socket.
//
// The pieces:
//
//   - agent.go: the running config and the one mutex that serialises every
//     change: apply the lines to the current config (cli.ApplyLines, on a
//     clone that shares its entries), validate what changed
//     (acl.ValidateChange), compile, install in the kernel (with the
//     session tracker's Prepare and Installed around it), and only then
//     commit; the running config is saved formatted by an acl.Formatter,
//     which formats only the entries a change made.
//   - reconcile.go: drift repair, recompiling when the host changed.
//   - server.go, auth.go: the socket server; peer credentials (SO_PEERCRED,
//     SO_PEERGROUPS) decide who may change the configuration, for the
//     operations internal/cli declares as changes (cli.Op.Mutates).
//     serverOps maps every declared operation to the agent's method.
//   - listen.go: what one local user can make the agent hold: connections,
//     rate, request size and running requests bounded per peer who may only
//     look; the accept loop that backs off instead of exiting.
//   - boot.go: start and reload; a startup-config that cannot be loaded
//     (FILE:LINE) leaves the last good configuration, or the kernel's
//     table, enforcing; framed files (header and "end") tell a cut file.
//   - dirs.go: directories another user could plant files in are refused;
//     files opened with O_NOFOLLOW, only root's symlinks followed.
//   - counters.go, show.go, metrics.go: what the shell and Prometheus see;
//     `clear access-list counters` as baselines (kept for a restarted
//     agent by baselines.go).
//   - load.go: load-limit flags armed from the load average.
//   - revert.go: `configure terminal revert timer`, kept across restarts.
//   - persist.go: atomic file replacement.
//   - wire (a subpackage, free of kernel code): the versioned protocol, one
//     JSON request (operation name, argument) and one JSON response
//     (error or result) per connection, and the shell's side, a
//     cli.Backend that carries any operation to the socket.
package agent

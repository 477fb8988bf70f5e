// Package conntrack reads the kernel's connection tracking table and turns it
// into what slxsh reports and enforces about open sessions (issue 5):
//
//   - Kernel.Dump streams every flow (IPv4 and IPv6) of one network namespace
//     from ctnetlink into compact Flows (dump.go); marks are set through
//     github.com/ti-mo/conntrack.
//   - Attribute is pure: it places each flow under the ACL entry that decides
//     it (first match, as the compiler evaluates entries) and under the
//     entry's limit key, and gives per key session counts (Counts, for `show
//     access-list sessions`; AtLimit is N open for a permit, N-1 for a
//     limited deny, which refuses the Nth), the sessions a configuration
//     would not admit (Excess, newest first, for `connlimit
//     existing-sessions reset`) and the sessions of an ACL, entry or source
//     (Select, for `clear access-list sessions`).
//   - End ends flows with a TCP reset to both ends: sockets of the host
//     itself at once through internal/sockdiag (SOCK_DESTROY), routed flows
//     on their next packet through the ct mark bit ResetMark, which the
//     compiled ruleset answers with a reset.
//   - Plan, Shrink and Reserver keep the layered reservation sets (named by
//     package layers) in step with the sessions that were open before a
//     limit existed (below).
//   - Tracker ties it together for the agent (agent.SessionTracker, plus
//     Prepare before each install and Run for the refresh loop).
//
// Conntrack records no interfaces. A Locator tells Attribute through which
// interface a flow came in or goes out; RouteLocator does it by route
// lookup, as reverse path filtering does (wrong under asymmetric routing).
// Without one, every flow is a candidate for every binding of an ACL: exact
// on a host whose ACLs are applied to every interface that carries the
// matching traffic, over-counting otherwise.
//
// # Sessions open before a limit existed
//
// When a limit set is created — a new or changed connlimit, a newly applied
// ACL, a table restored after drift — the kernel starts it empty and
// nf_conncount never adds a connection that is already open
// (KERNEL-NOTES). Left alone, a source with 3 open sessions under a new
// `connlimit 3` would get 3 more. The agent makes up for it; no key may
// exceed its limit at any moment (over-admission is a bug), and a short,
// conservative under-admission is accepted where it cannot be exact.
//
// Why not pre-create the key's element with the remaining budget (`add
// element ... { 10.0.0.1 ct count over 1 }`): an element whose count is 0
// is removed by the set's garbage collector within seconds, hand-made or
// not, and the next connection then creates a fresh element with the full
// budget (TestKernelPrecreatedElementIsCollected, Linux 6.18);
// google/nftables v0.3.0 cannot send element expressions either.
//
// Layers. The budget of old sessions lives in plain membership sets that
// the kernel never collects; the counting stays in elements that rules
// create. For a limit rule `add @S { KEY ct count over T }` the compiler
// writes, before it and with the same match and refusal (set names from
// package layers; j runs over layers.Layers(T), the powers of two below T):
//
//	meta nfproto @S_g REFUSE                                 # gate, closed while recounting
//	KEY @S_rf REFUSE                                         # old sessions fill the limit
//	KEY @S_r1 add @S_l1 { KEY ct count over T-1 } REFUSE     # layer 1
//	KEY @S_r2 add @S_l2 { KEY ct count over T-2 } REFUSE     # layer 2
//	KEY @S_r4 add @S_l4 { KEY ct count over T-4 } REFUSE     # layer 4 ...
//	add @S { KEY ct count over T } REFUSE                    # the limit itself
//
// A key with E old sessions is held at depth D = layers.Depth(T, E), the
// smallest layer >= E (T, i.e. S_rf, when there is none): it is in S_rj
// for every layer j <= D. Each new connection of the key passes through the
// layers it is in, each of which counts it, so its open new sessions stay
// <= T-D <= T-E: no key ever holds more than T. As old sessions end (they
// carry OldMark, so the refresh loop finds them with a dump filtered in
// the kernel, every second), the key leaves the layers above its new depth;
// the layers below have counted every new session from the start, so the
// budget that comes back is exact.
//
// Under-admission, all conservative and all temporary:
//
//   - Rounding: a key may get D-E fewer new sessions than T-E, until its
//     old sessions end. Exact when E is 1, 2 or another power of two below
//     T, or E >= T (always for T <= 3). Example: T=10, E=5 holds the key at
//     depth 8, so it gets 2 new sessions instead of 5 while the 5 old ones
//     last.
//   - The gate: before a ruleset with a new limit set is installed,
//     Tracker.Prepare closes S_g (Reserver.Gate), so from the install on
//     the entry refuses every new connection; after the install every open
//     session of the entry is old, Installed counts them from one dump,
//     marks them OldMark, and Reserver.Write fills the layers and opens the
//     gate in one transaction. The entry refuses only for the time of that
//     dump and write (about 0.3 s at 100k flows, BENCHMARKS.md). If counting
//     fails, the gate stays closed and the refresh loop retries every
//     second; a restarted agent finds a gate left closed and counts then.
//   - The layer counting sets have nft.ReserveSetSize slots: a key that
//     finds its layer set full is refused until its old sessions end.
//   - Budget comes back at the next refresh after an old session ends (up
//     to a second late).
//
// Sets the kernel already has (an unchanged limit, an adopted table after
// an agent restart) keep their counts and are not recounted.
package conntrack

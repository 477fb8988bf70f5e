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
//   - Plan and Shrink compute the reservations of the sessions that were
//     open before a limit existed (below); the one owner of our table,
//     nft.Applier, writes them (Owner).
//   - Index is the one session index the views share (issue 13): `show
//     access-list sessions`, the at-limit column of `show access-list ip`
//     (Tracker.Totals; the matches and refusals there are the kernel's
//     counter objects alone), the metrics and packet-tracer. Compact
//     per-flow records with per-key counts, kept by conntrack events, and
//     by a streamed dump in place every second while flows that send no
//     events are left under a limit (index.go); idle, listening to no
//     events, while no limit is bound; route lookups are cached until rtnetlink reports a
//     change (RouteLocator.Epoch). Reads take neither the agent's lock nor
//     the tracker's. The refresh lowers reservations from the index's old
//     sessions per key (Index.Old: a dump in place while silent flows
//     under a limit are left); counting a new limit (Plan; streamed, keeping no flows,
//     unless existing sessions are reset) and adoption still read dumps.
//     The records hold no pointers, IPv4 tuples in 4-byte addresses
//     (records.go).
//   - packet-tracer reads the same counts as `show access-list sessions`
//     (Tracker.Sessions, through TraceKeys) and which limits are still
//     gated (Tracker.Gated), so that it can never disagree with them.
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
// `connlimit 3` would get 3 more. The agent makes up for it, exactly: a key
// with E old sessions under limit T gets T-E new ones, for every E up to
// nft.ExactLayers (64), and at most ceil(E/16) fewer above.
//
// Why not pre-create the key's element with the remaining budget (`add
// element ... { 10.0.0.1 ct count over 1 }`): an element whose count is 0
// is removed by the set's garbage collector within seconds, hand-made or
// not, and the next connection then creates a fresh element with the full
// budget (TestKernelPrecreatedElementIsCollected, Linux 6.18).
//
// The rules (internal/nft, connlimitChecks). For a limit rule `add @S {
// KEY ct count over T } REFUSE` the compiler writes, with the entry's match:
//
//	meta nfproto @S_g REFUSE           # gate: closed from S's creation until counted
//	KEY @S_r jump S_res                # keys with old sessions (one lookup for the rest)
//	add @S { KEY ct count over T } REFUSE
//
//	chain S_res:
//	  KEY @S_rf REFUSE                 # old sessions fill the limit
//	  KEY @S_rJ add @S_lJ { KEY ct count over T-J } REFUSE    for every layer J
//
// and the agent holds a key with E old sessions at depth D = nft.Depth(T,
// E): D = E up to 64 (every depth has its layer), else the next layer up,
// or T (S_rf) when E >= T. Such a key is in S_r and in S_rJ for every
// layer J <= D.
//
// Why it never admits over the limit. Let n be the key's new sessions (those
// admitted since S was created; the kernel counts exactly these in S and
// in every layer the key was in when they were admitted) and E(t) its old
// sessions still open, with D >= E(t) at every moment. A connection is
// admitted only if it passes layer D: n+1 <= T-D, so afterwards n + E(t)
// <= n + D <= T. The invariant D >= E(t) holds because
//
//   - at the start, every session of the entry is old: the gate was closed
//     in the same transaction that created S (nft.Applier.Apply), so S and
//     its layers have counted nothing and refused everything; Installed
//     then counts every open session of the entry from one dump (E), marks
//     them OldMark, and writes the reservations at D = Depth(T, E) >= E
//     together with the opening of the gate, in one transaction;
//   - E(t) only falls (an old session never becomes new again), and D is
//     only ever lowered to Depth(T, E(t)) >= E(t) (Shrink), never raised:
//     a layer the key was not in from the start has not counted its new
//     sessions, while every layer J <= D has counted all of them since the
//     gate opened, so the lowered depth is exact at once.
//
// Whatever may have let a session escape the count starts the set afresh
// (renewed, with its gate closed, by nft.Applier.Apply in the change's own
// transaction), so the argument starts again from "every session is old":
//
//   - a drift repair renews every limit (connections may have passed while
//     the table was changed);
//   - a change to what reaches a limit rule — an earlier entry that a
//     connection could match together with it (acl.Entry.Overlaps), the
//     entry's own match, a block-for lockout of the list, the interfaces
//     its ACL is bound to — renews that limit (nft.Renewals): sessions
//     admitted by another entry or on another interface are then counted;
//   - a time range switch (nothing in the ruleset changes: the kernel's
//     clock does it) renews the limits it concerns, those of the ranged
//     entry and of later entries that share its connections
//     (nft.RangeRenewals), with their gates closed just before the instant
//     and the count made after it (agent.CrossBoundary); the tracker's
//     attribution says which entry decides a session now (active.go), so
//     that count and every later one agree while the kernel's rules are
//     the config's; a restarted agent renews them all, as it may have
//     slept through a switch;
//   - a kernel table that lacks some of a limit's reservation objects gets
//     the whole limit renewed;
//   - after a commit of someone else (the rules may be intact while set
//     elements are not), Verify renews a limit whose gate was closed, whose
//     reservations differ from what the tracker wrote, or whose limit set
//     lacks a key that has sessions the kernel counted (a flushed set);
//   - sessions picked up mid-stream (AdoptMark: open before conntrack
//     tracked them) renew the limits they fall under once they have seen
//     a reply; one that never has (Flow.Ghost: a forged ACK toward an
//     address that does not answer, kept by conntrack for 300 s) counts
//     nowhere, in the kernel or here, so forged segments fill no limit;
//     it gets GhostMark instead of AdoptMark (read once, not at every
//     refresh), and the kernel puts AdoptMark back at its first reply;
//   - a restarted agent adopts the table as it is (counts, reservations
//     and gates in the kernel are the truth; a gate left closed by an
//     agent that died before counting is counted then).
//
// What the kernel cannot give, bounded:
//
//   - Above 64 old sessions a key is held at the next layer up, so it gets
//     D-E fewer new sessions than T-E (at most ceil(E/16)) until its old
//     sessions end.
//   - The gate refuses the entry's new connections for the time of one
//     dump and one write after a limit is created (about 0.3 s at 100k
//     flows, BENCHMARKS.md). If counting fails, the gate stays closed and
//     the refresh loop retries every second.
//   - At a time range switch the entries it concerns refuse new
//     connections from shortly before the instant (200 ms plus twice the
//     last apply's time, at most 1.5 s) until the count after it is
//     written. A switch the agent reaches late (a change held it across
//     the instant) is crossed at once, with a warning: until then its
//     limits count as before it. At a DST change the kernel runs the old
//     offset's rules until Recompile commits the new ones (renewing in
//     the same transaction), moments later.
//   - Budget comes back at the next refresh after an old session ends (up
//     to a second late).
//   - A layer counting set is unsized and capped by the kernel at 65535
//     keys; a key that finds it full is refused (fail closed) until its old
//     sessions end.
//   - Connections opened while the table holds no rule that uses conntrack
//     (before the first install, or while someone has flushed our table)
//     are not tracked at all, so nothing can count them until conntrack
//     picks them up mid-stream (KERNEL-NOTES).
package conntrack

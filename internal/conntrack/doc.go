// Package conntrack reads the kernel's connection tracking table and turns it
// into what slxsh reports and enforces about open sessions (issue 5):
//
//   - Dump reads every flow (IPv4 and IPv6) of one network namespace through
//     ctnetlink (github.com/ti-mo/conntrack).
//   - Attribute is pure: it places each flow under the ACL entry that decides
//     it (first match, as the compiler evaluates entries) and under the entry's
//     limit key, and gives per key session counts (Counts, for `show
//     access-list sessions`), the sessions a configuration would not admit
//     (Excess, for `connlimit existing-sessions reset` and `clear access-list
//     sessions`) and the sessions the kernel's counts do not know about
//     (Reservations).
//   - MarkReset sets the reset bit of the ct mark on chosen flows; the ruleset
//     answers the next packet of a marked flow with a TCP reset. Sockets of the
//     host itself are ended at once with internal/sockdiag.
//   - Plan, Shrink and Reserver keep the layered reservation sets (named by
//     package layers) in step with the sessions that were open before a
//     limit existed; see reserve.go for why layers and not pre-created
//     elements.
//   - Tracker ties it together for the agent (agent.SessionTracker, plus
//     Prepare before each install and Run for the refresh loop).
//
// Conntrack records no interfaces. A Locator can tell Attribute through which
// interface a flow came in or goes out (e.g. by route lookup); without one,
// every flow is a candidate for every binding of an ACL, which is exact on a
// host whose ACLs are applied to every interface that carries the matching
// traffic and over-counts otherwise.
package conntrack
